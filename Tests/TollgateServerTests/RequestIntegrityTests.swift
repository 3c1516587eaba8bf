import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// What runs upstream is exactly what was decided and logged: raw bytes that try to be read two ways (a repeated key),
/// a request method sent as a notification, a method nobody listed, and calls made when the upstream's tool list
/// cannot be had. Each is refused, the fixture server's ledger shows nothing ran, and the log holds no decision that
/// did not happen. Over HTTP (sessions and stateless 2026-07-28 requests) and the stdio front.
final class RequestIntegrityTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    static let policy = "version: \"1\"\ndefault: allow\ntools:\n  delete_file: {action: deny, reason: never}\n"

    func fixture(policy: String, ledger: URL, options: [String] = []) throws -> GatewayUnderTest.Server {
        .stdio(
            command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path] + options, policy: policy)
    }

    func temporaryFile(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(name)-\(UUID().uuidString.prefix(8)).jsonl")
    }

    /// The tools the fixture server ran, in order.
    func executed(_ ledger: URL) -> [String] {
        let text = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0))["tool"]?.stringValue }
    }

    func decided(_ gateway: GatewayUnderTest) async throws -> [ToolCallDecided] {
        try await gateway.events(type: ToolCallDecided.type).map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
    }

    /// Requests that a peer could read two ways, each refused before anything is decided or forwarded.
    static let readTwoWays = [
        #"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"echo","name":"delete_file","arguments":{"path":"/victim"}}}"#,
        #"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a"},"arguments":{"text":"b"}}}"#,
        #"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"transfer","arguments":{"amount":10,"to":"x","amount":900000}}}"#,
        #"{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"echo","n\u0061me":"delete_file","arguments":{"path":"/v"}}}"#,
        #"{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"echo","arguments":{"text":"t"},"_meta":{"progressToken":1,"progressToken":"x"}}}"#,
    ]

    static let callAsNotification = #"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"text":"notified"}}}"#

    func testRepeatedKeysAndRequestsSentAsNotificationsAreRefusedOverHTTPAndNothingRuns() async throws {
        let ledger = temporaryFile("ledger")
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: Self.policy, ledger: ledger)])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        let stateless = [("MCP-Protocol-Version", "2026-07-28")]

        for body in Self.readTwoWays {
            for (how, extra, id) in [("session", [(String, String)](), session), ("stateless", stateless, nil)] {
                let response = wire.post(body, session: id, accept: "application/json", extra: extra)
                XCTAssertEqual(response.status, 400, "\(how): \(body) -> \(response.body)")
                let error = try? JSONValue(parsing: response.body)["error"]
                XCTAssertEqual(error?["code"]?.doubleValue, -32600, "\(how): \(response.body)")
                XCTAssertTrue(error?["message"]?.stringValue?.contains("appears twice") == true, "\(how): \(response.body)")
            }
        }
        for (how, extra, id) in [("session", [(String, String)](), session), ("stateless", stateless, nil)] {
            let response = wire.post(Self.callAsNotification, session: id, accept: "application/json", extra: extra)
            XCTAssertEqual(response.status, 400, "\(how): a tools/call without an id: \(response.body)")
            XCTAssertEqual((try? JSONValue(parsing: response.body))?["error"]?["code"]?.doubleValue, -32600, "\(how): \(response.body)")
            let unknown = wire.post(#"{"jsonrpc":"2.0","id":21,"method":"tools/delete","params":{}}"#, session: id, extra: extra)
            XCTAssertEqual((try? JSONValue(parsing: unknown.body))?["error"]?["code"]?.doubleValue, -32601, "\(how): \(unknown.body)")
        }

        // The session still serves, and the upstream ran only that.
        let echo = wire.call("echo", #"{"text":"only this"}"#, id: 30, session: session)
        XCTAssertEqual(echo?["result"]?["isError"]?.boolValue, false, "\(String(describing: echo))")
        // The upstream is asked after the answer for nothing more; give a late notification time to have run.
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertEqual(executed(ledger), ["echo"])
        let decisions = try await decided(gateway)
        XCTAssertEqual(decisions.map(\.tool), ["echo"], "nothing refused above was decided (or logged as decided)")
        XCTAssertEqual(decisions.first?.arguments, ["text": "only this"])
    }

    func testTheStdioFrontRefusesTheSameBytes() async throws {
        let ledger = temporaryFile("ledger")
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: Self.policy, ledger: ledger)])
        gateway.stop()
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-stdin-\(UUID().uuidString.prefix(8))")
        let lines =
            [
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
                #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            ] + Self.readTwoWays + [
                Self.callAsNotification,
                #"{"jsonrpc":"2.0","id":21,"method":"tools/delete","params":{}}"#,
                #"{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"echo","arguments":{"text":"only this"}}}"#,
            ]
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let running = try RunningProgram(
            RunningProgram.tollgateBinary, ["stdio", "fixture", "--config", gateway.configPath, "--database", gateway.database.connectionString],
            environment: ["TOLLGATE_AGENT_KEY": gateway.key], stdin: input.path)
        XCTAssertEqual(try running.wait(timeout: .seconds(60)), 0, running.standardError.suffix(2000).description)
        let replies = running.standardOutput.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        let refusals = replies.filter { $0["error"] != nil }
        XCTAssertEqual(
            refusals.compactMap { $0["error"]?["code"]?.doubleValue }.sorted(), [-32601] + Array(repeating: -32600, count: 6),
            running.standardOutput)
        XCTAssertEqual(replies.first { $0["id"] == 30 }?["result"]?["isError"]?.boolValue, false, running.standardOutput)
        XCTAssertEqual(executed(ledger), ["echo"])
        let decisions = try await decided(gateway)
        XCTAssertEqual(decisions.map(\.tool), ["echo"])
    }

    func testAResourceReadPassesAndIsLoggedWithWhoReadWhat() async throws {
        let ledger = temporaryFile("ledger")
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: Self.policy, ledger: ledger)])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        let read = wire.post(
            #"{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"fixture://note"}}"#, session: session, accept: "application/json")
        let contents = (try? JSONValue(parsing: read.body))?["result"]?["contents"]?.arrayValue?.first
        XCTAssertEqual(contents?["text"]?.stringValue, "a note from the fixture", read.body)
        let deadline = ContinuousClock.now + .seconds(5)
        while !gateway.log.contains("read through the gateway"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let line = gateway.log.split(separator: "\n").first { $0.contains("read through the gateway") } ?? ""
        XCTAssertTrue(line.contains("fixture://note") && line.contains("agent-a") && line.contains("resources/read"), "\(line)")
    }

    // MARK: - No decision without the tool list

    func testASessionThatNeverSentInitializedCannotSkipTheCategoryRules() async throws {
        let ledger = temporaryFile("ledger")
        let policy = "version: \"1\"\ndefault: allow\ncategories:\n  destructive: {action: deny, reason: no destructive tools}\n"
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: policy, ledger: ledger)])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        // A session that sends initialize and never `notifications/initialized`: it never listed the tools either.
        let initialize = wire.post(
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
            accept: "application/json")
        let session = try XCTUnwrap(initialize.header("mcp-session-id"), initialize.body)
        let call = wire.call("delete_file", #"{"path":"/victim"}"#, id: 2, session: session)
        XCTAssertEqual(call?["result"]?["isError"]?.boolValue, true, "refused: \(String(describing: call))")
        // Only names the upstream lists are decided: an unlisted one is unknown, never forwarded.
        let unlisted = wire.call("not_a_tool", "{}", id: 3, session: session)
        XCTAssertTrue(
            unlisted?["error"]?["code"]?.doubleValue == -32602 || unlisted?["result"]?["isError"]?.boolValue == true,
            "\(String(describing: unlisted))")
        XCTAssertEqual(executed(ledger), [], "nothing ran upstream")
        let decisions = try await decided(gateway)
        XCTAssertEqual(decisions.filter { $0.tool == "delete_file" }.map(\.decision).filter { $0 == "allow" }, [], "\(decisions)")
        XCTAssertFalse(decisions.isEmpty, "the refusal is in the log")
    }

    func testTheStdioFrontDecidesNoCallWithoutTheToolList() async throws {
        let ledger = temporaryFile("ledger")
        let categories = "version: \"1\"\ndefault: allow\ncategories:\n  destructive: {action: deny, reason: no destructive tools}\n"
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": try fixture(policy: categories, ledger: ledger),
            "broken": try fixture(policy: "version: \"1\"\ndefault: allow\n", ledger: ledger, options: ["--tools-list", "error"]),
        ])
        gateway.stop()
        let initialize =
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
        // `fixture`: a client that never sends notifications/initialized calls a destructive tool; `broken`: the
        // server's own tools/list fails.
        let runs = [
            ("fixture", [initialize, #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/v"}}}"#]),
            (
                "broken",
                [
                    initialize, #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                    #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}"#,
                ]
            ),
        ]
        for (server, lines) in runs {
            let input = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-stdin-\(UUID().uuidString.prefix(8))")
            try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
            let running = try RunningProgram(
                RunningProgram.tollgateBinary, ["stdio", server, "--config", gateway.configPath, "--database", gateway.database.connectionString],
                environment: ["TOLLGATE_AGENT_KEY": gateway.key], stdin: input.path)
            XCTAssertEqual(try running.wait(timeout: .seconds(60)), 0, running.standardError.suffix(2000).description)
            let replies = running.standardOutput.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
            let call = replies.first { $0["id"] == 2 }
            XCTAssertEqual(call?["result"]?["isError"]?.boolValue, true, "\(server): \(running.standardOutput)")
        }
        XCTAssertEqual(executed(ledger), [], "nothing ran upstream")
        let decisions = try await decided(gateway)
        XCTAssertEqual(decisions.count, 2, "\(decisions.map { ($0.tool, $0.decision, $0.rule) })")
        XCTAssertFalse(decisions.contains { $0.decision == "allow" }, "\(decisions.map { ($0.tool, $0.decision, $0.rule) })")
        XCTAssertEqual(decisions.first { $0.server == "broken" }?.rule, "catalog")
    }

    func testAnUpstreamWhoseToolListFailsOrHangsGetsNoCallsAndTheLogSaysWhy() async throws {
        for mode in ["error", "hang"] {
            let ledger = temporaryFile("ledger")
            let gateway = try await GatewayUnderTest.start(
                servers: ["fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n", ledger: ledger, options: ["--tools-list", mode])])
            defer { gateway.stop() }
            let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
            let session = try wire.initialize()
            let started = ContinuousClock.now
            let call = wire.call("echo", #"{"text":"x"}"#, id: 2, session: session, timeout: .seconds(40))
            let waited = started.duration(to: .now)
            XCTAssertEqual(call?["result"]?["isError"]?.boolValue, true, "\(mode): \(String(describing: call))")
            let text = call?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue ?? ""
            XCTAssertTrue(text.contains("tool list could not be read"), "\(mode): \(text)")
            if mode == "hang" { XCTAssertLessThan(waited, .seconds(30), "the wait for the list is bounded") }
            // Stateless requests share the rule.
            let statelessCall = wire.post(
                #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"y"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#,
                accept: "application/json", extra: [("MCP-Protocol-Version", "2026-07-28")], timeout: .seconds(40))
            let statelessResult = try? JSONValue(parsing: statelessCall.body)
            XCTAssertTrue(
                statelessResult?["result"]?["isError"]?.boolValue == true || statelessResult?["error"] != nil,
                "\(mode) stateless: \(statelessCall.body)")
            try await Task.sleep(for: .milliseconds(300))
            XCTAssertEqual(executed(ledger), [], "\(mode): nothing ran upstream")
            let decisions = try await decided(gateway)
            XCTAssertFalse(decisions.isEmpty, "\(mode): refusals are logged")
            XCTAssertTrue(
                decisions.allSatisfy { $0.decision == "error" && $0.rule == "catalog" }, "\(mode): \(decisions.map { ($0.decision, $0.rule) })")
            XCTAssertTrue(decisions.allSatisfy { $0.reason?.contains("tool list") == true }, "\(mode)")
        }
    }
}
