import Hummingbird
import HummingbirdTesting
import Logging
import TollgatePostgres
import TollgateTestSupport
import XCTest

@testable import TollgateServer

final class HealthRoutesTests: XCTestCase {
    func makeApp(client: PostgresClient, readiness: Readiness) -> some ApplicationProtocol {
        let router = Router()
        HealthRoutes(client: client, readiness: readiness).register(on: router)
        return Application(router: router)
    }

    func testReadyzIsOKWhenTheDatabaseAnswersAndEveryPartRuns() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        defer { Task { await client.shutdown() } }
        let readiness = Readiness(waitingFor: ["projector"])
        readiness.set("projector", ready: true)
        try await makeApp(client: client, readiness: readiness).test(.router) { http in
            try await http.execute(uri: "/readyz", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(String(buffer: response.body), #"{"status":"ready"}"#)
                XCTAssertEqual(response.headers[.contentType], "application/json")
            }
            try await http.execute(uri: "/healthz", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
            }
        }
    }

    func testReadyzNamesThePartThatHasNotStarted() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        defer { Task { await client.shutdown() } }
        try await makeApp(client: client, readiness: Readiness(waitingFor: ["projector"])).test(.router) { http in
            try await http.execute(uri: "/readyz", method: .get) { response in
                XCTAssertEqual(response.status, .serviceUnavailable)
                XCTAssertTrue(String(buffer: response.body).contains("projector not ready"), String(buffer: response.body))
            }
        }
    }

    func testReadyzIsUnavailableWhileTheDatabaseIsUnreachableButHealthzStillAnswers() async throws {
        let unreachable = PostgresClient(
            configuration: PostgresConfiguration("host=/nonexistent-tollgate-socket-dir dbname=x connect_timeout=2"))
        defer { Task { await unreachable.shutdown() } }
        try await makeApp(client: unreachable, readiness: Readiness()).test(.router) { http in
            try await http.execute(uri: "/readyz", method: .get) { response in
                XCTAssertEqual(response.status, .serviceUnavailable)
                XCTAssertTrue(String(buffer: response.body).contains("could not connect"), String(buffer: response.body))
            }
            try await http.execute(uri: "/healthz", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
            }
        }
    }
}
