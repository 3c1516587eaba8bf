import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// `tollgate projections rebuild rate_windows` recomputes the rate windows from the log (migration 0003 promised it;
/// until 0013 the command answered that there is no such projection), as the gateway's runtime role, and the gateway
/// then counts on from the rebuilt windows.
final class RateWindowRebuildTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    func tollgate(_ arguments: [String], database: PostgresConfiguration) throws -> (status: Int32, stdout: String, stderr: String) {
        try RunningProgram.run(
            RunningProgram.tollgateBinary, arguments + ["--database", database.connectionString, "--log-level", "warning"], timeout: .seconds(60))
    }

    func testRebuildingTheRateWindowsRecomputesThemFromTheLog() async throws {
        let policy = """
            version: "1"
            default: allow
            tools:
              echo:
                limits: [{counter: echo_rate, window: hour, max: 3, scope: global}]
              add:
                limits: [{counter: sums, window: day, max: 100, increment_from: args.a, scope: agent}]
            """
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: policy)])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        for index in 0..<2 {
            XCTAssertEqual(wire.call("echo", #"{"text":"\#(index)"}"#, id: 10 + index, session: session)?["result"]?["isError"]?.boolValue, false)
        }
        XCTAssertEqual(wire.call("add", #"{"a": 2.5, "b": 1}"#, id: 20, session: session)?["result"]?["isError"]?.boolValue, false)
        try await assertRateWindowsEqualTheLog(gateway)

        // Someone damages the table (as the owner: the runtime role cannot write it directly).
        let owner = PostgresClient(configuration: try TestCluster.owner(of: gateway.database))
        try await owner.query("UPDATE tollgate.rate_windows SET count = 3 WHERE counter = 'echo_rate'")
        try await owner.query(
            "INSERT INTO tollgate.rate_windows (server, counter, scope, window_start, window_seconds, count) VALUES ('fixture', 'ghost', 'global', 0, 60, 7)"
        )
        let full = wire.call("echo", #"{"text":"refused"}"#, id: 30, session: session)
        XCTAssertTrue(
            full?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("rate limit") == true, "\(String(describing: full))")

        // The gateway's own role rebuilds them from the log: two echoes and 2.5 added, the ghost gone.
        let rebuild = try tollgate(["projections", "rebuild", "rate_windows"], database: gateway.database)
        XCTAssertEqual(rebuild.status, 0, rebuild.stderr)
        XCTAssertTrue(rebuild.stdout.hasPrefix("rate_windows: replayed "), rebuild.stdout)
        try await assertRateWindowsEqualTheLog(gateway)
        let counts = try await owner.query("SELECT counter, count::float8 FROM tollgate.rate_windows WHERE count <> 0 ORDER BY counter").rows.map {
            "\(try $0.decode(String.self, 0))=\(try $0.decode(Double.self, 1))"
        }
        XCTAssertEqual(counts, ["echo_rate=2.0", "sums=2.5"])

        // The gateway counts on from the rebuilt windows: one more echo fits, the next does not.
        XCTAssertEqual(wire.call("echo", #"{"text":"third"}"#, id: 31, session: session)?["result"]?["isError"]?.boolValue, false)
        XCTAssertEqual(wire.call("echo", #"{"text":"fourth"}"#, id: 32, session: session)?["result"]?["isError"]?.boolValue, true)
        try await assertRateWindowsEqualTheLog(gateway)

        // Rebuilding everything includes them; an unknown name lists them among the known.
        let all = try tollgate(["projections", "rebuild"], database: gateway.database)
        XCTAssertEqual(all.status, 0, all.stderr)
        XCTAssertTrue(all.stdout.contains("rate_windows: replayed "), all.stdout)
        let unknown = try tollgate(["projections", "rebuild", "rate_window"], database: gateway.database)
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(
            unknown.stderr.contains(#"there is no projection named "rate_window""#) && unknown.stderr.contains("rate_windows"), unknown.stderr)
        await owner.shutdown()
    }
}
