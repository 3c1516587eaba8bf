import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// `tollgate doctor`: one line per thing serve needs, and a failing exit when any of them would stop it.
final class DoctorTests: XCTestCase {
    let tollgate = RunningProgram.tollgateBinary
    var directory: URL!

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-doctor-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("policies"), withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func write(_ text: String, _ name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func lines(_ output: String) -> [String: String] {
        var found: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, let colon = parts[1].firstIndex(of: ":") else { continue }
            found[parts[1][..<colon].trimmingCharacters(in: .whitespaces)] = String(parts[0])
        }
        return found
    }

    func testEverythingServeNeedsIsThereAndAnUnreachableHTTPServerIsOnlyAWarning() async throws {
        _ = try write("version: \"1\"\ndefault: allow\n", "policies/p.yaml")
        let python = try Peers.python2()
        let path = try write(
            """
            servers:
              fixture:
                command: \(python)
                args: [\(Peers.fixtureServer)]
                policy: policies/p.yaml
              web:
                url: http://127.0.0.1:\(HTTPProbe.freePort())/mcp
                policy: policies/p.yaml
            """, "tollgate.yaml")
        let owner = try await TestCluster.freshDatabase(migrated: false)
        let runtime = try TestCluster.runtime(of: owner).connectionString
        let result = try RunningProgram.run(
            tollgate,
            [
                "doctor", "--config", path, "--listen", "127.0.0.1:\(HTTPProbe.freePort())", "--database", runtime, "--migration-database",
                owner.connectionString,
            ], environment: ["TOLLGATE_CONFIG": "", "TOLLGATE_DATABASE_URL": ""])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let status = lines(result.stdout)
        XCTAssertEqual(status["configuration"], "ok", result.stdout)
        XCTAssertEqual(status["servers.fixture.policy"], "ok", result.stdout)
        XCTAssertEqual(status["servers.fixture.command"], "ok", result.stdout)
        XCTAssertEqual(status["servers.web.url"], "warn", result.stdout)
        XCTAssertEqual(status["listen"], "ok", result.stdout)
        XCTAssertEqual(status["database"], "ok", result.stdout)
        XCTAssertTrue(result.stdout.contains("nothing would stop serve"), result.stdout)
        // It migrated the fresh database, as serve would.
        let client = PostgresClient(configuration: owner)
        let applied = try await client.query("SELECT count(*) FROM tollgate.schema_migrations")[0].decode(Int.self, 0)
        await client.shutdown()
        XCTAssertEqual(applied, Migration.all.count)
    }

    func testEachThingThatWouldStopServeIsAFailLineAndTheExitSaysSo() async throws {
        _ = try write("version: \"1\"\ndefault: alow\n", "policies/bad.yaml")
        let path = try write(
            """
            servers:
              gone:
                command: no-such-command-\(UUID().uuidString.prefix(6))
                policy: policies/bad.yaml
              folder:
                command: /tmp
                policy: policies/missing.yaml
            """, "tollgate.yaml")
        // A port something already listens on.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        XCTAssertEqual(listen(listener, 1), 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let busy = Int(UInt16(bigEndian: address.sin_port))
        let result = try RunningProgram.run(
            tollgate, ["doctor", "--config", path, "--listen", "127.0.0.1:\(busy)", "--database", "postgresql://127.0.0.1:1/none"],
            environment: ["TOLLGATE_CONFIG": "", "TOLLGATE_DATABASE_URL": ""])
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        let status = lines(result.stdout)
        XCTAssertEqual(status["servers.gone.policy"], "FAIL", result.stdout)
        XCTAssertEqual(status["servers.gone.command"], "FAIL", result.stdout)
        XCTAssertEqual(status["servers.folder.command"], "FAIL", "a folder is not a command: \(result.stdout)")
        XCTAssertEqual(status["servers.folder.policy"], "FAIL", result.stdout)
        XCTAssertEqual(status["listen"], "FAIL", result.stdout)
        XCTAssertTrue(result.stdout.contains("in use"), result.stdout)
        XCTAssertEqual(status["database"], "FAIL", result.stdout)
        XCTAssertTrue(result.stdout.contains("serve would not start"), result.stdout)
        for line in result.stdout.split(separator: "\n") where !line.hasPrefix("serve would") {
            XCTAssertTrue(["ok", "warn", "FAIL"].contains(String(line.prefix { $0 != " " })), "one line per check: \(line)")
        }

        let invalid = try write("servers: [\n", "broken.yaml")
        let broken = try RunningProgram.run(tollgate, ["doctor", "--config", invalid, "--database", "postgresql://127.0.0.1:1/none"])
        XCTAssertEqual(broken.status, 1, broken.stdout + broken.stderr)
        XCTAssertEqual(lines(broken.stdout)["configuration"], "FAIL", broken.stdout)
        let badListen = try RunningProgram.run(tollgate, ["doctor", "--listen", "nowhere", "--database", "postgresql://127.0.0.1:1/none"])
        XCTAssertEqual(lines(badListen.stdout)["listen"], "FAIL", badListen.stdout)
    }
}
