import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// What a stdio MCP server started by the gateway finds in its environment, seen from inside the real child (the
/// fixture's `environment` and `run` tools): the allowlist (`PATH`, `HOME`, the locale, `TZ`, ...) and its own
/// `servers.<name>.env`, never the gateway's secrets, whichever front (HTTP or `tollgate stdio`) started it.
final class ChildEnvironmentTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    /// Secrets in the gateway's environment, each a value no child may hold. `PASSED_SECRET` reaches the child only
    /// because the configuration passes it on by name (`PASSED_ON: ${PASSED_SECRET}`).
    static let canaries = [
        "TOLLGATE_DATABASE_URL": "postgresql://tollgate:canary-db-password@127.0.0.1:1/tollgate",
        "DATABASE_URL": "postgres://app:canary-database-url-password@db.internal/app",
        // Not PGPASSWORD, which would win over the password file of the gateway's own connection; any PG* variable
        // would leak alike, and the allowlist check below catches every name.
        "PGPASSFILE": "/nonexistent/canary-pgpassfile",
        "TOLLGATE_AGENT_KEY": "tg_canaryAgentKeyThatNoChildMayHold0123456789ab",
        "TOLLGATE_WEBHOOK_SECRET": "whsec_Y2FuYXJ5LXdlYmhvb2stc2VjcmV0LTAxMjM0NTY3ODk=",
        "OTHER_SERVER_TOKEN": "canary-other-server-header-token",
        "PASSED_SECRET": "canary-passed-on-purpose",
    ]

    /// What a child may hold: the allowlist of `ChildEnvironment` and the server's configured `env`.
    static let allowed: Set<String> = [
        "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES",
        "LC_MONETARY", "LC_NUMERIC", "LC_TIME", "LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT", "LC_NAME", "LC_PAPER", "LC_TELEPHONE",
        "GIVEN", "PASSED_ON",
    ]

    /// The fixture over stdio with an `env` of its own (a plain value and one passed on from the gateway's
    /// environment), beside a remote server whose header and a webhook whose secret come from the environment.
    static func start() async throws -> GatewayUnderTest {
        var environment = canaries
        environment["TZ"] = "America/New_York"
        environment["LANG"] = "C.UTF-8"
        let unused = HTTPProbe.freePort()
        return try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"],
                    policy: "version: \"1\"\ndefault: allow\n",
                    extra: "    env: {GIVEN: plain-value, PASSED_ON: \"${PASSED_SECRET}\"}\n"),
                "remote": .http(
                    url: "http://127.0.0.1:\(unused)/mcp", policy: "version: \"1\"\ndefault: allow\n",
                    extra: "    headers: {Authorization: \"Bearer ${OTHER_SERVER_TOKEN}\"}\n"),
            ],
            extraConfig: "webhooks:\n  - name: reviewers\n    url: http://127.0.0.1:\(unused)/hook\n    secrets: [\"${TOLLGATE_WEBHOOK_SECRET}\"]\n",
            environment: environment)
    }

    /// Checks one child's environment (`child`, from its `environment` tool) and the output of `env` run by it.
    func assertOnlyTheAllowlistAndItsEnv(
        _ child: [String: String], grandchild: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertFalse(child.isEmpty, "the child's environment was read", file: file, line: line)
        for (name, secret) in Self.canaries {
            let holders = child.filter { $0.value.contains(secret) }.map(\.key)
            XCTAssertEqual(holders, name == "PASSED_SECRET" ? ["PASSED_ON"] : [], "\(name)'s value reached the child", file: file, line: line)
            XCTAssertFalse(
                grandchild.contains(secret) && name != "PASSED_SECRET", "\(name)'s value reached a program the child ran", file: file, line: line)
        }
        XCTAssertEqual(Set(child.keys).subtracting(Self.allowed), [], "only the allowlist and the server's env", file: file, line: line)
        XCTAssertEqual(child["GIVEN"], "plain-value", "the server's env is added", file: file, line: line)
        XCTAssertEqual(child["PASSED_ON"], Self.canaries["PASSED_SECRET"], "a secret passed on by name in env arrives", file: file, line: line)
        XCTAssertEqual(child["TZ"], "America/New_York", "TZ passes", file: file, line: line)
        XCTAssertEqual(child["LANG"], "C.UTF-8", "LANG passes", file: file, line: line)
        XCTAssertEqual(child["PATH"], ProcessInfo.processInfo.environment["PATH"], "PATH passes", file: file, line: line)
        XCTAssertTrue(grandchild.contains("GIVEN=plain-value"), "the child's own programs see the same: \(grandchild)", file: file, line: line)
    }

    static func decodedEnvironment(_ text: String?) -> [String: String] {
        guard let text, case .object(let members)? = try? JSONValue(parsing: text) else { return [:] }
        return members.compactMapValues(\.stringValue)
    }

    func testAStdioServerStartedByTheGatewayHoldsNoneOfItsSecrets() async throws {
        let gateway = try await Self.start()
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        let reply = wire.call("environment", "{}", id: 2, session: session)
        let child = Self.decodedEnvironment(reply?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue)
        let ran = wire.call("run", #"{"argv":["/usr/bin/env"]}"#, id: 3, session: session)
        let output = try? JSONValue(parsing: ran?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue ?? "")
        XCTAssertEqual(output?["status"]?.doubleValue, 0, "\(String(describing: ran))")
        assertOnlyTheAllowlistAndItsEnv(child, grandchild: output?["stdout"]?.stringValue ?? "")
    }

    func testAStdioServerStartedByTheStdioFrontHoldsNoneOfItsSecrets() async throws {
        let gateway = try await Self.start()
        gateway.stop()
        let command = [
            RunningProgram.tollgateBinary, "stdio", "fixture", "--config", gateway.configPath, "--database", gateway.database.connectionString,
        ]
        .map { "'\($0)'" }.joined(separator: " ")
        // The front's own environment: the agent's real key, and every other canary (the configuration refers to some).
        var environment = Self.canaries
        environment["TOLLGATE_AGENT_KEY"] = gateway.key
        environment["TZ"] = "America/New_York"
        environment["LANG"] = "C.UTF-8"
        let run = try Peers.runClient(
            python: try Peers.python2(),
            arguments: [Peers.client, "--transport", "stdio", "--command", command, "--steps"]
                + [
                    JSONValue.array([
                        .object(["op": "call_tool", "name": "environment", "arguments": .object([:])]),
                        .object(["op": "call_tool", "name": "run", "arguments": .object(["argv": .array([.string("/usr/bin/env")])])]),
                    ]).canonicalJSON
                ] + environment.sorted { $0.key < $1.key }.flatMap { ["--env", "\($0.key)=\($0.value)"] })
        XCTAssertEqual(run.status, 0, run.description)
        let child = Self.decodedEnvironment(run.step(0)?["result"]?["content"]?.arrayValue?.first?.stringValue)
        let output = try? JSONValue(parsing: run.step(1)?["result"]?["content"]?.arrayValue?.first?.stringValue ?? "")
        XCTAssertFalse(child.values.contains { $0.contains(gateway.key) }, "the agent's key stays with the front")
        assertOnlyTheAllowlistAndItsEnv(child, grandchild: output?["stdout"]?.stringValue ?? "")
    }
}
