import Foundation
import TollgateTestSupport
import XCTest

@testable import TollgatePostgres

final class EmbeddedPostgresTests: XCTestCase {
    func testMissingServerProgramsNameThePackageToInstall() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertThrowsError(try EmbeddedPostgresProbe.find(in: empty.path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("apt-get install postgresql"), text)
            XCTAssertTrue(text.contains("TOLLGATE_PG_BINDIR"), text)
        }
    }

    func testDefaultDataDirectoryFollowsTheEnvironment() {
        XCTAssertEqual(
            EmbeddedPostgres.defaultDataDirectory(environment: ["TOLLGATE_DATA_DIR": "/srv/tg"]).path, "/srv/tg/postgres")
        if geteuid() == 0 {
            XCTAssertEqual(EmbeddedPostgres.defaultDataDirectory(environment: ["HOME": "/root"]).path, "/var/lib/tollgate/postgres")
        } else {
            XCTAssertEqual(
                EmbeddedPostgres.defaultDataDirectory(environment: ["HOME": "/home/ann"]).path, "/home/ann/.local/share/tollgate/postgres")
        }
    }

    func testARunningClusterIsReusedAndLeftRunningByItsGuest() async throws {
        _ = try TestCluster.configuration()
        guard let directory = TestCluster.dataDirectory else { throw XCTSkip("tests use an external server") }
        let guest = EmbeddedPostgres(dataDirectory: directory)
        let configuration = try guest.start()
        XCTAssertFalse(guest.startedByUs)
        try guest.stopIfStarted()
        let connection = try PostgresConnection.connect(configuration)
        XCTAssertEqual(try connection.query("SELECT 1")[0].decode(Int.self, 0), 1)
        connection.close()
    }

    func testAFreshClusterIsCreatedStartedAndStopped() async throws {
        let directory = URL(fileURLWithPath: "/tmp/tollgate-embedded-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        var settings = EmbeddedPostgres.Settings()
        settings.unsafeFastMode = true
        let cluster = EmbeddedPostgres(dataDirectory: directory, settings: settings)
        let configuration = try cluster.start()
        XCTAssertTrue(cluster.startedByUs)
        let connection = try PostgresConnection.connect(configuration)
        let listens = try connection.query("SHOW listen_addresses")[0].decode(String.self, 0)
        XCTAssertEqual(listens, "", "no TCP port")
        XCTAssertEqual(try connection.query("SELECT current_database()")[0].decode(String.self, 0), "tollgate")
        connection.close()
        try cluster.stopIfStarted()
        XCTAssertThrowsError(try PostgresConnection.connect(configuration))
        // Started again on the same directory: no second initdb, same data.
        let again = EmbeddedPostgres(dataDirectory: directory, settings: settings)
        try again.start()
        XCTAssertTrue(again.startedByUs)
        try again.stop(immediate: true)
    }
}

/// Reaches the binary search with a controlled environment.
enum EmbeddedPostgresProbe {
    static func find(in folder: String) throws -> URL {
        // Only the explicit folder and an empty PATH: Debian's folder is skipped by pointing at a missing root.
        try EmbeddedPostgres.findBinaries(environment: ["TOLLGATE_PG_BINDIR": folder, "PATH": folder], debianRoot: folder + "/none")
    }
}
