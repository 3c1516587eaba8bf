import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// The gateway with real MCP peers: the official Python SDK's clients (2.3.0 default and legacy modes, 1.30.0)
/// through `tollgate serve` to real servers over stdio and Streamable HTTP.
final class GatewayInteropTests: XCTestCase {
    static let fixturePolicy = """
        version: "1"
        default: allow
        hide: [delete_file]
        tools:
          transfer: {action: deny, reason: transfers need a human}
          add:
            limits: [{counter: add_rate, window: hour, max: 2, scope: agent}]
        """

    func fixtureServer() throws -> GatewayUnderTest.Server {
        .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.fixturePolicy)
    }

    static let listAndCall: JSONValue = .array([
        .object(["op": "list_tools"]),
        .object(["op": "call_tool", "name": "echo", "arguments": .object(["text": "hello through the gate"])]),
        .object(["op": "call_tool", "name": "transfer", "arguments": .object(["amount": 5, "to": "bob"])]),
        .object(["op": "call_tool", "name": "delete_file", "arguments": .object(["path": "/etc/passwd"])]),
        .object(["op": "call_tool", "name": "add", "arguments": .object(["a": 1, "b": 2])]),
        .object(["op": "call_tool", "name": "add", "arguments": .object(["a": 3, "b": 4])]),
        .object(["op": "call_tool", "name": "add", "arguments": .object(["a": 5, "b": 6])]),
    ])

    /// The same script, the same answers, whatever the client generation or mode.
    func assertListAndCall(_ run: Peers.ClientRun, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.status, 0, run.description, file: file, line: line)
        XCTAssertNil(run.fatal, run.description, file: file, line: line)
        let names = run.step(0)?["result"]?.arrayValue?.compactMap(\.stringValue) ?? []
        XCTAssertTrue(names.contains("echo") && names.contains("transfer"), "\(names)", file: file, line: line)
        XCTAssertFalse(names.contains("delete_file"), "a hidden tool is not listed: \(names)", file: file, line: line)

        let echo = run.step(1)?["result"]
        XCTAssertEqual(echo?["isError"]?.boolValue, false, run.description, file: file, line: line)
        XCTAssertEqual(echo?["content"]?.arrayValue?.first?.stringValue, "hello through the gate", file: file, line: line)

        let transfer = run.step(2)?["result"]
        XCTAssertEqual(transfer?["isError"]?.boolValue, true, "a denial is a tool error: \(run)", file: file, line: line)
        let reason = transfer?["content"]?.arrayValue?.first?.stringValue ?? ""
        XCTAssertTrue(reason.contains("transfers need a human") && reason.contains("tools.transfer"), reason, file: file, line: line)

        let hidden = run.step(3)
        XCTAssertEqual(hidden?["ok"]?.boolValue, false, "a hidden tool is refused as unknown: \(run)", file: file, line: line)
        XCTAssertEqual(hidden?["error"]?["code"]?.doubleValue, -32602, file: file, line: line)

        XCTAssertEqual(run.step(4)?["result"]?["isError"]?.boolValue, false, file: file, line: line)
        XCTAssertEqual(run.step(5)?["result"]?["isError"]?.boolValue, false, file: file, line: line)
        let limited = run.step(6)?["result"]
        XCTAssertEqual(limited?["isError"]?.boolValue, true, "the third add is over the limit of 2: \(run)", file: file, line: line)
        XCTAssertTrue(limited?["content"]?.arrayValue?.first?.stringValue?.contains("Retry after") == true, file: file, line: line)
    }

    func testEveryClientGenerationSeesAllowDenyHideAndLimitsOverStdio() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": try fixtureServer()], agents: ["agent-a": "a", "agent-b": "b", "agent-c": "c", "agent-d": "d"])
        defer { gateway.stop() }
        let clients: [(String, String, String?)] = [
            ("agent-a", try Peers.python2(), "auto"), ("agent-b", try Peers.python2(), "legacy"), ("agent-c", try Peers.python1(), nil),
            ("agent-d", try Peers.python2(), "2026-07-28"),
        ]
        for (agent, python, mode) in clients {
            let run = try Peers.runClient(python: python, url: gateway.url("fixture"), key: gateway.keys[agent], mode: mode, steps: Self.listAndCall)
            assertListAndCall(run)
            if mode == "auto" {
                // The upstream (mcp 2.3) speaks 2026-07-28, so discovery through the gate succeeds and the client goes on
                // statelessly; the gate decides its calls all the same.
                XCTAssertEqual(run.connected?["protocolVersion"]?.stringValue, "2026-07-28", "\(run)")
            }
        }
        // Every decision is in the log, with its rule and the policy's hash, before any outcome.
        let decided = try await gateway.events(type: "ToolCallDecided").map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        XCTAssertEqual(decided.count, 24, "six calls by each of four agents")
        XCTAssertEqual(Set(decided.map(\.agent)), ["agent-a", "agent-b", "agent-c", "agent-d"])
        XCTAssertEqual(decided.filter { $0.decision == "deny" }.map(\.rule), Array(repeating: "tools.transfer", count: 4))
        XCTAssertEqual(decided.filter { $0.decision == "hidden" }.count, 4)
        XCTAssertEqual(decided.filter { $0.decision == "limited" }.count, 4)
        XCTAssertTrue(decided.allSatisfy { !$0.policyHash.isEmpty })
        // Outcomes are appended just after each answer.
        let completed = try await gateway.events(type: "ToolCallCompleted", atLeast: 12).map {
            try EventCoding.decode(ToolCallCompleted.self, from: $0.data)
        }
        XCTAssertEqual(completed.count, 12, "echo and two adds for each agent ran")
        XCTAssertTrue(completed.allSatisfy { $0.outcome == "success" }, "\(completed.map(\.outcome))")
    }

    func testTheReferenceServersTimeAndGitWorkThroughTheGate() async throws {
        let repository = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-git-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: repository, withIntermediateDirectories: true)
        XCTAssertEqual(try RunningProgram.run("/usr/bin/git", ["init", "-q", repository.path]).status, 0)
        let gateway = try await GatewayUnderTest.start(servers: [
            "time": .stdio(command: try Peers.serverTime(), arguments: ["--local-timezone", "UTC"], policy: "version: \"1\"\ndefault: allow\n"),
            "git": .stdio(
                command: try Peers.serverGit(), arguments: ["--repository", repository.path],
                policy: "version: \"1\"\ndefault: deny\ntools:\n  git_status: {action: allow}\n"),
        ])
        defer { gateway.stop() }
        let time = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("time"), key: gateway.key, mode: "auto",
            steps: .array([
                .object(["op": "list_tools"]),
                .object(["op": "call_tool", "name": "get_current_time", "arguments": .object(["timezone": "UTC"])]),
            ]))
        XCTAssertEqual(time.status, 0, time.description)
        XCTAssertEqual(time.step(1)?["result"]?["isError"]?.boolValue, false, time.description)
        XCTAssertTrue(time.step(1)?["result"]?["content"]?.arrayValue?.first?.stringValue?.contains("UTC") == true, time.description)

        let git = try Peers.runClient(
            python: try Peers.python1(), url: gateway.url("git"), key: gateway.key,
            steps: .array([
                .object(["op": "call_tool", "name": "git_status", "arguments": .object(["repo_path": .string(repository.path)])]),
                .object(["op": "call_tool", "name": "git_log", "arguments": .object(["repo_path": .string(repository.path)])]),
            ]))
        XCTAssertEqual(git.status, 0, git.description)
        XCTAssertEqual(git.step(0)?["result"]?["isError"]?.boolValue, false, git.description)
        XCTAssertEqual(git.step(1)?["result"]?["isError"]?.boolValue, true, "git_log falls to `default: deny`: \(git)")
        XCTAssertTrue(git.step(1)?["result"]?["content"]?.arrayValue?.first?.stringValue?.contains("default") == true, git.description)
    }

    func testProgressAndCancellationAreRelayed() async throws {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-outcomes-\(UUID().uuidString.prefix(8)).jsonl")
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": .stdio(
                command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--outcomes", ledger.path],
                policy: "version: \"1\"\ndefault: allow\n")
        ])
        defer { gateway.stop() }
        let run = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("fixture"), key: gateway.key, mode: "legacy",
            steps: .array([
                .object(["op": "call_tool", "name": "slow", "arguments": .object(["seconds": 0.6, "steps": 3]), "progress": true]),
                .object(["op": "call_tool", "name": "slow", "arguments": .object(["seconds": 30]), "cancel_after": 1]),
                .object(["op": "sleep", "seconds": 1.5]),
            ]))
        XCTAssertEqual(run.status, 0, run.description)
        XCTAssertEqual(run.step(0)?["progress"]?.arrayValue?.count, 3, "three progress notifications passed through: \(run)")
        func cancelled() -> Int { Peers.fixtureOutcomes("cancelled", in: ledger) }
        XCTAssertEqual(cancelled(), 1, "the upstream saw the cancellation (notifications/cancelled)")

        // At 2026-07-28 the client sends no notifications/cancelled: it closes the request's connection, which the
        // gateway takes as the cancellation (the call would otherwise run to the gateway's 60 s time-out).
        let stateless = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("fixture"), key: gateway.key, mode: "2026-07-28",
            steps: .array([
                // The first stateless call starts the server's shared upstream and lists its tools: a call of its own, so
                // that the one given up below is running upstream when its connection closes, however slow the start.
                .object(["op": "call_tool", "name": "echo", "arguments": .object(["text": "start the shared upstream"])]),
                .object(["op": "call_tool", "name": "slow", "arguments": .object(["seconds": 30]), "cancel_after": 1]),
                .object(["op": "sleep", "seconds": 1.5]),
            ]))
        XCTAssertEqual(stateless.status, 0, stateless.description)
        XCTAssertEqual(stateless.connected?["protocolVersion"]?.stringValue, "2026-07-28", "\(stateless)")
        for _ in 0..<60 where cancelled() < 2 { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertEqual(cancelled(), 2, "the upstream saw the stateless call cancelled when its connection closed")
    }

    func testAStreamableHTTPUpstreamThroughTheGate() async throws {
        let upstreamPort = HTTPProbe.freePort()
        let httpLog = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-http-log-\(getpid())-\(upstreamPort).jsonl")
        defer { try? FileManager.default.removeItem(at: httpLog) }
        let upstream = try RunningProgram(
            try Peers.python2(),
            [Peers.fixtureServer, "--transport", "streamable-http", "--port", String(upstreamPort), "--http-log", httpLog.path])
        defer { upstream.kill() }
        let deadline = ContinuousClock.now + .seconds(30)
        while !upstream.standardOutput.contains("READY"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertTrue(upstream.standardOutput.contains("READY"), upstream.standardError)
        // A credential for the upstream, and an Accept the gateway must replace (it reads JSON and event streams).
        let gateway = try await GatewayUnderTest.start(servers: [
            "remote": .http(
                url: "http://127.0.0.1:\(upstreamPort)/mcp", policy: Self.fixturePolicy,
                extra: "    headers: {X-Upstream-Token: \"s3cret\", Accept: \"text/plain\"}\n")
        ])
        defer { gateway.stop() }
        let clients: [(String, String?)] = [
            (try Peers.python2(), "auto"), (try Peers.python2(), "legacy"), (try Peers.python1(), nil), (try Peers.python2(), "2026-07-28"),
        ]
        for (python, mode) in clients {
            let run = try Peers.runClient(
                python: python, url: gateway.url("remote"), key: gateway.key, mode: mode,
                steps: .array(
                    Array(Self.listAndCall.arrayValue!.prefix(4)) + [
                        .object(["op": "call_tool", "name": "slow", "arguments": .object(["seconds": 0.3, "steps": 3]), "progress": true])
                    ]))
            XCTAssertEqual(run.status, 0, run.description)
            XCTAssertFalse(run.step(0)?["result"]?.arrayValue?.contains(.string("delete_file")) ?? true)
            XCTAssertEqual(run.step(1)?["result"]?["isError"]?.boolValue, false, run.description)
            XCTAssertEqual(run.step(2)?["result"]?["isError"]?.boolValue, true, run.description)
            XCTAssertEqual(run.step(3)?["error"]?["code"]?.doubleValue, -32602, run.description)
            // The upstream answers a call with an event stream; its progress arrives while the call runs.
            XCTAssertEqual(run.step(4)?["progress"]?.arrayValue?.count, 3, "progress passes through the event stream: \(run)")
            if mode == "auto" || mode == "2026-07-28" {
                // The upstream (mcp 2.3) speaks 2026-07-28 over HTTP too: the default client stays on it, statelessly.
                XCTAssertEqual(run.connected?["protocolVersion"]?.stringValue, "2026-07-28", "\(run)")
            }
        }
        // What reached the upstream: every POST carries the configured credential and exactly one Accept, the
        // gateway's; every other POST carries the session and the negotiated version.
        let posts = try String(contentsOf: httpLog, encoding: .utf8).split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
            .filter { $0["method"]?.stringValue == "POST" }
        XCTAssertGreaterThan(posts.count, 10, "\(posts.count) POSTs")
        for post in posts {
            let headers = (post["headers"]?.arrayValue ?? []).compactMap { pair -> (String, String)? in
                guard let name = pair.arrayValue?.first?.stringValue, let value = pair.arrayValue?.last?.stringValue else { return nil }
                return (name.lowercased(), value)
            }
            XCTAssertEqual(headers.filter { $0.0 == "x-upstream-token" }.map(\.1), ["s3cret"], "\(headers)")
            XCTAssertEqual(headers.filter { $0.0 == "accept" }.map(\.1), ["application/json, text/event-stream"], "\(headers)")
            // `initialize` opens the session; stateless requests (2026-07-28, `server/discover` among them) carry their
            // version, method and name as headers that match the body, and no session.
            let body = post["body"]
            let method = body?["method"]?.stringValue ?? ""
            if let version = body?["params"]?["_meta"]?["io.modelcontextprotocol/protocolVersion"]?.stringValue, body?["id"] != nil {
                XCTAssertEqual(headers.filter { $0.0 == "mcp-protocol-version" }.map(\.1), [version], "\(headers)")
                XCTAssertEqual(headers.filter { $0.0 == "mcp-method" }.map(\.1), [method], "\(headers)")
                if method == "tools/call" {
                    XCTAssertEqual(headers.filter { $0.0 == "mcp-name" }.map(\.1), [body?["params"]?["name"]?.stringValue ?? ""], "\(headers)")
                }
                XCTAssertEqual(headers.filter { $0.0 == "mcp-session-id" }.count, 0, "\(headers)")
            } else if method != "initialize" {
                XCTAssertEqual(headers.filter { $0.0 == "mcp-session-id" }.count, 1, "\(headers)")
                XCTAssertEqual(headers.filter { $0.0 == "mcp-protocol-version" }.count, 1, "\(headers)")
            }
        }
    }

    /// Starts a fixture server over HTTP and returns its URL from its READY line.
    func startHTTPFixture(python: String, transport: String) async throws -> (url: String, process: RunningProgram) {
        let process = try RunningProgram(python, [Peers.fixtureServer, "--transport", transport, "--port", "0"])
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let line = process.standardOutput.split(separator: "\n").first(where: { $0.hasPrefix("READY ") }) {
                return (String(line.dropFirst(6)), process)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.kill()
        throw RunningProgram.Failure(description: "the fixture did not start: \(process.standardError.suffix(2000))")
    }

    func testALegacySSEUpstreamThroughTheGate() async throws {
        let upstream = try await startHTTPFixture(python: try Peers.python1(), transport: "sse")
        defer { upstream.process.kill() }
        let gateway = try await GatewayUnderTest.start(servers: ["legacy": .http(url: upstream.url, transport: "sse", policy: Self.fixturePolicy)])
        defer { gateway.stop() }
        let run = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("legacy"), key: gateway.key, mode: "auto",
            steps: .array(
                Array(Self.listAndCall.arrayValue!.prefix(4)) + [
                    .object(["op": "call_tool", "name": "slow", "arguments": .object(["seconds": 0.3, "steps": 2]), "progress": true])
                ]))
        XCTAssertEqual(run.status, 0, run.description)
        XCTAssertFalse(run.step(0)?["result"]?.arrayValue?.contains(.string("delete_file")) ?? true, run.description)
        XCTAssertEqual(run.step(1)?["result"]?["content"]?.arrayValue?.first?.stringValue, "hello through the gate", run.description)
        XCTAssertEqual(run.step(2)?["result"]?["isError"]?.boolValue, true, run.description)
        XCTAssertEqual(run.step(3)?["error"]?["code"]?.doubleValue, -32602, run.description)
        XCTAssertEqual(run.step(4)?["progress"]?.arrayValue?.count, 2, "progress passes through the SSE upstream: \(run)")
        XCTAssertEqual(
            run.connected?["protocolVersion"]?.stringValue, "2025-11-25", "a legacy upstream refuses discovery; the client falls back: \(run)")
    }

    func testMcpProxyBridgingTheTimeServerOverStreamableHTTP() async throws {
        let port = HTTPProbe.freePort()
        let proxy = try RunningProgram(
            try Peers.mcpProxy(), ["--host", "127.0.0.1", "--port", String(port), "--log-level", "WARNING", "--", try Peers.serverTime()])
        defer { proxy.kill() }
        _ = await HTTPProbe.waitFor(port: port, path: "/status", timeout: .seconds(30))
        let gateway = try await GatewayUnderTest.start(servers: [
            "time": .http(
                url: "http://127.0.0.1:\(port)/mcp",
                policy: "version: \"1\"\ndefault: allow\ntools:\n  convert_time: {action: deny, reason: no conversions}\n")
        ])
        defer { gateway.stop() }
        let run = try Peers.runClient(
            python: try Peers.python1(), url: gateway.url("time"), key: gateway.key,
            steps: [
                ["op": "list_tools"],
                ["op": "call_tool", "name": "get_current_time", "arguments": ["timezone": "Europe/Paris"]],
                [
                    "op": "call_tool", "name": "convert_time",
                    "arguments": ["source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"],
                ],
            ])
        XCTAssertEqual(run.status, 0, run.description)
        XCTAssertEqual(
            Set(run.step(0)?["result"]?.arrayValue?.compactMap(\.stringValue) ?? []), ["get_current_time", "convert_time"], run.description)
        XCTAssertTrue(run.step(1)?["result"]?["content"]?.arrayValue?.first?.stringValue?.contains("Europe/Paris") == true, run.description)
        XCTAssertEqual(run.step(2)?["result"]?["isError"]?.boolValue, true, run.description)
    }
}
