import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// `tollgate config check`: the configuration and every policy it names, checked without starting anything, with
/// every error of every file listed at once.
final class ConfigCheckTests: XCTestCase {
    let tollgate = RunningProgram.tollgateBinary
    var directory: URL!

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-check-\(UUID().uuidString.prefix(8))")
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

    func check(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        try RunningProgram.run(tollgate, ["config", "check"] + arguments, environment: ["TOLLGATE_CONFIG": ""].merging(environment) { $1 })
    }

    func config(servers: [String: String]) -> String {
        var yaml = "servers:\n"
        for (name, policy) in servers.sorted(by: { $0.key < $1.key }) {
            yaml += "  \(name):\n    command: mcp-server-time\n    policy: \(policy)\n"
        }
        return yaml + "agents:\n  - {id: a, key_hash: \"\(AgentKey.hash(AgentKey.generate()))\"}\n"
    }

    func testAValidConfigurationAndItsPoliciesPass() throws {
        _ = try write("version: \"1\"\ndefault: allow\n", "policies/time.yaml")
        _ = try write("version: \"1\"\ndefault: deny\n", "policies/git.yaml")
        let path = try write(config(servers: ["time": "policies/time.yaml", "git": "policies/git.yaml"]), "tollgate.yaml")
        let text = try check(["--config", path])
        XCTAssertEqual(text.status, 0, text.stdout + text.stderr)
        XCTAssertTrue(text.stdout.contains("servers.time.policy") && text.stdout.contains("servers.git.policy"), text.stdout)
        XCTAssertTrue(text.stdout.contains("ok (2 servers)"), text.stdout)
        let json = try check(["--config", path, "--format", "json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let report = try JSONValue(parsing: json.stdout)
        XCTAssertEqual(report["valid"]?.boolValue, true)
        XCTAssertEqual(report["policies"]?.arrayValue?.count, 2)
        // The environment names the file too, as for serve.
        XCTAssertEqual(try check([], environment: ["TOLLGATE_CONFIG": path]).status, 0)
    }

    func testEveryErrorOfEveryPolicyIsListedAtOnce() throws {
        _ = try write("version: \"1\"\ndefault: alow\ntools:\n  x: {action: nope}\n", "policies/time.yaml")
        let huge = String(repeating: "# padding\n", count: 200_000)
        _ = try write("version: \"1\"\ndefault: allow\n" + huge, "policies/big.yaml")
        let path = try write(
            config(servers: ["time": "policies/time.yaml", "git": "policies/missing.yaml", "big": "policies/big.yaml"]), "tollgate.yaml")
        let result = try check(["--config", path])
        XCTAssertEqual(result.status, 78, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("alow"), "the misspelt default: \(result.stdout)")
        XCTAssertTrue(result.stdout.contains("nope"), "the bad action, in the same run: \(result.stdout)")
        XCTAssertTrue(result.stdout.contains("time.yaml:2:"), "file:line: \(result.stdout)")
        XCTAssertTrue(result.stdout.contains("missing.yaml"), "the missing file: \(result.stdout)")
        XCTAssertTrue(result.stdout.contains("limited to"), "the oversized file is refused before it is read: \(result.stdout)")
        let json = try check(["--config", path, "--format", "json"])
        XCTAssertEqual(json.status, 78)
        let report = try JSONValue(parsing: json.stdout)
        XCTAssertEqual(report["valid"]?.boolValue, false)
        let invalid = report["policies"]?.arrayValue?.filter { $0["valid"]?.boolValue == false }.compactMap { $0["server"]?.stringValue }
        XCTAssertEqual(Set(invalid ?? []), ["time", "git", "big"])
    }

    func testABrokenConfigurationListsEveryErrorAndNoPolicyIsRead() throws {
        let path = try write(
            """
            servers:
              time:
                comand: mcp-server-time
                policy: policies/time.yaml
            agents:
              - {id: a, key_hash: "sha256:nothex"}
            limits: {max_body_bytes: 10}
            """, "tollgate.yaml")
        let result = try check(["--config", path])
        XCTAssertEqual(result.status, 78, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains("tollgate.yaml:3:"), result.stderr)
        XCTAssertTrue(result.stderr.contains("key_hash") && result.stderr.contains("max_body_bytes"), "every error: \(result.stderr)")
        let json = try check(["--config", path, "--format", "json"])
        XCTAssertEqual(json.status, 78)
        XCTAssertEqual(try JSONValue(parsing: json.stdout)["valid"]?.boolValue, false, "scripts get an answer too")
    }

    func testBadArgumentsAndHostileFilesAreClearErrors() throws {
        let none = try check([])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("--config"), none.stderr)
        let missing = try check(["--config", "/nonexistent/tollgate.yaml"])
        XCTAssertEqual(missing.status, 78)
        XCTAssertTrue(missing.stderr.contains("cannot read the configuration file"), missing.stderr)
        let binary = try write(String(decoding: (0..<4096).map { UInt8($0 % 256) }, as: UTF8.self), "binary.yaml")
        let garbage = try check(["--config", binary])
        XCTAssertEqual(garbage.status, 78, garbage.stdout + garbage.stderr)
        // A policy path that is a folder.
        let folder = try write(config(servers: ["time": "policies"]), "folder.yaml")
        let result = try check(["--config", folder])
        XCTAssertEqual(result.status, 78, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("servers.time.policy"), result.stdout)
        let format = try check(["--config", folder, "--format", "xml"])
        XCTAssertEqual(format.status, 64, format.stderr)
    }
}
