import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// What operators do around the relay: make keys, take the tool inventory, scaffold a policy, reload a policy,
/// read metrics, run the stdio front, and lose the database (calls are refused, never forwarded unrecorded).
final class GatewayOperationsTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire
    let tollgate = RunningProgram.tollgateBinary

    /// The fixture MCP server over stdio; `options` are its own (`--ledger FILE`, `--outcomes FILE`).
    func fixture(policy: String, options: [String] = []) throws -> GatewayUnderTest.Server {
        .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"] + options, policy: policy)
    }

    func testKeysNewPrintsAKeyOnceAndTheHashThatMatchesIt() throws {
        let result = try RunningProgram.run(tollgate, ["keys", "new", "ci-bot", "--grant", "ci", "--format", "json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let output = try JSONValue(parsing: result.stdout)
        let key = try XCTUnwrap(output["key"]?.stringValue)
        XCTAssertTrue(key.hasPrefix("tg_"))
        XCTAssertEqual(output["key_hash"]?.stringValue, AgentKey.hash(key))
        XCTAssertEqual(output["grant"]?.stringValue, "ci")
        let again = try RunningProgram.run(tollgate, ["keys", "new", "ci-bot", "--format", "json"])
        XCTAssertNotEqual(try JSONValue(parsing: again.stdout)["key"], output["key"], "every key is fresh")
        let text = try RunningProgram.run(tollgate, ["keys", "new", "ci-bot"])
        XCTAssertTrue(text.stdout.contains("key_hash: sha256:"), text.stdout)
        for bad in ["", "Bad Name", "-x", String(repeating: "a", count: 64), "a/b", "é"] {
            let refused = try RunningProgram.run(tollgate, ["keys", "new", bad])
            XCTAssertEqual(refused.status, 64, "`\(bad)`: \(refused.stderr)")
        }
    }

    func testAnInvalidConfigurationListsEveryErrorAndStopsBeforeServing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-badcfg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("tollgate.yaml").path
        try """
        servers:
          time:
            comand: mcp-server-time
            policy: p.yaml
        agents:
          - {id: a, key_hash: "sha256:nothex"}
        limits: {max_body_bytes: 10}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try RunningProgram.run(
            tollgate, ["serve", "--config", path, "--listen", "127.0.0.1:\(HTTPProbe.freePort())"], timeout: .seconds(30))
        XCTAssertEqual(result.status, 78, result.stderr)
        XCTAssertTrue(result.stderr.contains("tollgate.yaml:3:"), "file:line:column: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("command"), "suggests `command`: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("key_hash"), result.stderr)
        XCTAssertTrue(result.stderr.contains("max_body_bytes"), result.stderr)
        let missing = try RunningProgram.run(tollgate, ["serve", "--config", "/nonexistent/tollgate.yaml"])
        XCTAssertEqual(missing.status, 78)
        XCTAssertTrue(missing.stderr.contains("cannot read the configuration file"), missing.stderr)
    }

    func testToolsListsTheInventoryAndScaffoldWritesAPolicyThatLoads() async throws {
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": try fixture(policy: "version: \"1\"\ndefault: allow\nhide: [die]\ntools:\n  transfer: {action: deny}\n")
        ])
        gateway.stop()
        let json = try RunningProgram.run(tollgate, ["tools", "fixture", "--config", gateway.configPath, "--format", "json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let tools = try JSONValue(parsing: json.stdout)["tools"]?.arrayValue ?? []
        func entry(_ name: String) -> JSONValue? { tools.first { $0["name"]?.stringValue == name } }
        XCTAssertEqual(entry("echo")?["category"]?.stringValue, "read")
        XCTAssertEqual(entry("delete_file")?["category"]?.stringValue, "destructive")
        XCTAssertEqual(entry("transfer")?["decision"]?.stringValue, "deny")
        XCTAssertEqual(entry("transfer")?["rule"]?.stringValue, "tools.transfer")
        XCTAssertEqual(entry("die")?["decision"]?.stringValue, "hidden", "the inventory shows hidden tools too")
        let table = try RunningProgram.run(tollgate, ["tools", "fixture", "--config", gateway.configPath])
        XCTAssertTrue(table.stdout.contains("TOOL") && table.stdout.contains("delete_file"), table.stdout)

        // Its folder does not exist yet: scaffold makes it, as the README's `--output policies/...` needs.
        let output = gateway.directory.appendingPathComponent("new/policies/scaffold.yaml").path
        let scaffold = try RunningProgram.run(tollgate, ["policy", "scaffold", "fixture", "--config", gateway.configPath, "--output", output])
        XCTAssertEqual(scaffold.status, 0, scaffold.stderr)
        let check = try RunningProgram.run(tollgate, ["policy", "check", output])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        let policy = try PolicyLoader.load(try String(contentsOfFile: output, encoding: .utf8), fileName: output)
        let call = { (tool: String) in
            PolicyCall(agent: "a", grant: "g", session: "s", server: "fixture", tool: tool, category: nil, now: Date())
        }
        XCTAssertEqual(policy.evaluate(call("echo")).outcome, .allow)
        XCTAssertEqual(policy.evaluate(call("delete_file")).outcome.name, "require_approval")
        XCTAssertEqual(policy.evaluate(call("a_tool_added_later")).outcome.name, "deny")
        let refused = try RunningProgram.run(tollgate, ["policy", "scaffold", "fixture", "--config", gateway.configPath, "--output", output])
        XCTAssertNotEqual(refused.status, 0, "does not overwrite")
        let unknown = try RunningProgram.run(tollgate, ["tools", "nope", "--config", gateway.configPath])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("no server named `nope`"), unknown.stderr)
    }

    func testAChangedPolicyIsReloadedAndABrokenOneKeepsTheOld() async throws {
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n")])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        XCTAssertEqual(wire.call("echo", #"{"text":"1"}"#, id: 1, session: session)?["result"]?["isError"]?.boolValue, false)

        try gateway.writePolicy("fixture", "version: \"1\"\ndefault: allow\ntools:\n  echo: {action: deny, reason: echo is off}\n")
        var denied: JSONValue?
        for attempt in 0..<40 {
            denied = wire.call("echo", #"{"text":"2"}"#, id: 10 + attempt, session: session)
            if denied?["result"]?["isError"]?.boolValue == true { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTAssertTrue(
            denied?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("echo is off") == true, "\(String(describing: denied))")

        try gateway.writePolicy("fixture", "version: \"1\"\ndefault: alow\n")
        try await Task.sleep(for: .seconds(3))
        XCTAssertTrue(gateway.log.contains("policy file has errors"), gateway.log.suffix(2000).description)
        XCTAssertTrue(gateway.log.contains("default"), "the log names the bad field")
        let stillDenied = wire.call("echo", #"{"text":"3"}"#, id: 99, session: session)
        XCTAssertEqual(stillDenied?["result"]?["isError"]?.boolValue, true, "the last good policy stays in force")
    }

    func testAReloadTellsAConnectedClientThatTheToolListChanged() async throws {
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n")])
        defer { gateway.stop() }
        let writer = Task {
            try await Task.sleep(for: .seconds(4))
            try gateway.writePolicy("fixture", "version: \"1\"\ndefault: allow\nhide: [echo]\n")
        }
        let run = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("fixture"), key: gateway.key, mode: "legacy",
            steps: .array([
                .object(["op": "list_tools"]),
                .object(["op": "wait_notification", "method": "notifications/tools/list_changed", "timeout": 20]),
                .object(["op": "list_tools"]),
            ]))
        _ = try await writer.value
        XCTAssertEqual(run.status, 0, run.description)
        XCTAssertEqual(run.step(1)?["ok"]?.boolValue, true, run.description)
        XCTAssertTrue(run.step(0)?["result"]?.arrayValue?.contains(.string("echo")) == true)
        XCTAssertFalse(run.step(2)?["result"]?.arrayValue?.contains(.string("echo")) ?? true, "echo is hidden now: \(run)")
    }

    func testMetricsCountDecisionsAndSessions() async throws {
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": try fixture(policy: "version: \"1\"\ndefault: allow\ntools:\n  transfer: {action: deny}\n")
        ])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        _ = wire.call("echo", #"{"text":"1"}"#, id: 1, session: session)
        _ = wire.call("transfer", #"{"amount":1,"to":"x"}"#, id: 2, session: session)
        let metrics = HTTPProbe.get(port: gateway.port, path: "/metrics")?.body ?? ""
        XCTAssertTrue(metrics.contains(#"tollgate_decisions_total{server="fixture",outcome="allow"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"tollgate_decisions_total{server="fixture",outcome="deny"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"tollgate_sessions_open{server="fixture"} 1"#), metrics)
        XCTAssertTrue(metrics.contains("tollgate_relay_overhead_seconds_bucket"), metrics)
        XCTAssertTrue(metrics.contains("tollgate_upstream_call_seconds"), metrics)
    }

    func testAResponseThatComesFirstIsOneJSONBodyAndProgressOpensAnEventStream() async throws {
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n")])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        // No GET stream and an agent that takes either: the answer could have needed a stream, but the response came
        // first, so it is one JSON body.
        let plain = wire.post(#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#, session: session)
        XCTAssertEqual(plain.status, 200, plain.body)
        XCTAssertEqual(plain.header("content-type"), "application/json", plain.body)
        let answer = try JSONValue(parsing: plain.body)
        XCTAssertEqual(answer["id"]?.doubleValue, 7)
        XCTAssertEqual(answer["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "hi", plain.body)
        // Progress first: an event stream, each notification as it came, then the response.
        let progress = wire.post(
            #"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"slow","arguments":{"seconds":0.2,"steps":2},"_meta":{"progressToken":"p8"}}}"#,
            session: session)
        XCTAssertEqual(progress.status, 200, progress.body)
        XCTAssertEqual(progress.header("content-type"), "text/event-stream", progress.body)
        let events = progress.body.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.map {
            try? JSONValue(parsing: String($0.dropFirst(6)))
        }
        XCTAssertEqual(events.count, 3, progress.body)
        XCTAssertEqual(events.prefix(2).map { $0?["method"]?.stringValue }, ["notifications/progress", "notifications/progress"], progress.body)
        XCTAssertEqual(events.prefix(2).map { $0?["params"]?["progressToken"]?.stringValue }, ["p8", "p8"], progress.body)
        XCTAssertEqual(events.last??["id"]?.doubleValue, 8, progress.body)
        XCTAssertNotNil(events.last??["result"], progress.body)
        // The upstream's JSON-RPC error, when it comes first, is JSON too.
        let failed = wire.post(
            #"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"rpc_error","arguments":{"code":-32042,"message":"no"}}}"#,
            session: session)
        XCTAssertEqual(failed.header("content-type"), "application/json", failed.body)
        XCTAssertEqual(try JSONValue(parsing: failed.body)["error"]?["code"]?.doubleValue, -32042, failed.body)
    }

    func testAnAgentThatHangsUpCancelsItsCallUpstreamAtOnce() async throws {
        let outcomes = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-hangup-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: outcomes) }
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n", options: ["--outcomes", outcomes.path])
        ])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        func cancelledCalls() -> Int { Peers.fixtureOutcomes("cancelled", in: outcomes) }
        // Each agent gives up after 1 s of a 30 s call and closes its connection: once waiting for an answer that could
        // have been a stream, once for a JSON answer only. The gateway's own time-out is far away (60 s).
        for (id, accept) in [(11, "application/json, text/event-stream"), (12, "application/json")] {
            let started = ContinuousClock.now
            let gaveUp = wire.post(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"slow","arguments":{"seconds":30}}}"#, session: session,
                accept: accept, timeout: .seconds(1))
            XCTAssertEqual(gaveUp.status, 0, "no answer within the agent's second: \(gaveUp.body)")
            let cancelled = id - 10
            for _ in 0..<100 where cancelledCalls() < cancelled { try await Task.sleep(for: .milliseconds(50)) }
            XCTAssertEqual(cancelledCalls(), cancelled, "the upstream saw call \(id) cancelled (Accept: \(accept))")
            XCTAssertLessThan(started.duration(to: .now), .seconds(8), "cancelled when the agent hung up, not at a time-out")
        }
        // The session and the gateway go on.
        let answer = wire.call("echo", #"{"text":"still here"}"#, id: 13, session: session)
        XCTAssertEqual(answer?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "still here", "\(String(describing: answer))")
        // Both outcomes are in the log as cancelled (an outcome lingers a moment to share a commit).
        let client = PostgresClient(configuration: gateway.database)
        defer { Task { await client.shutdown() } }
        var logged: [String] = []
        for _ in 0..<100 {
            logged = try await client.query(
                "SELECT data->>'outcome' FROM tollgate.events WHERE type = 'ToolCallCompleted' ORDER BY position"
            ).rows.map { try $0.decode(String.self, 0) }
            if logged.count == 3 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(logged, ["cancelled", "cancelled", "success"])
    }

    func testWhatComesWhileAnAgentsGETStreamIsHungUpWaitsForItsNextOne() async throws {
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n")])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        let headers = [("Accept", "text/event-stream"), ("Authorization", "Bearer \(gateway.key)"), ("Mcp-Session-Id", session)]
        // The agent's GET stream, given up after a second (nothing came on it).
        let first = HTTPProbe.request(port: gateway.port, method: "GET", path: "/mcp/fixture", headers: headers, timeout: .seconds(1))
        XCTAssertFalse(first?.body.contains("list_changed") ?? false)
        try await Task.sleep(for: .milliseconds(300))
        // A reload's notification comes while no GET stream is open (it would have been written to the closed
        // connection and lost): the next one gets it.
        try gateway.writePolicy("fixture", "version: \"1\"\ndefault: allow\nhide: [echo]\n")
        gateway.process.signal(SIGHUP)
        for _ in 0..<100 where !gateway.log.contains("policy reloaded") { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertTrue(gateway.log.contains("policy reloaded"), gateway.log)
        try await Task.sleep(for: .milliseconds(200))
        let next = HTTPProbe.request(port: gateway.port, method: "GET", path: "/mcp/fixture", headers: headers, timeout: .seconds(2))?.body ?? ""
        XCTAssertTrue(next.contains(#""method":"notifications/tools/list_changed""#), "the next GET stream carried it: \(next)")
    }

    func testWithoutTheDatabaseCallsAreRefusedAndNothingIsForwarded() async throws {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ledger-\(UUID().uuidString.prefix(8)).jsonl")
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n", options: ["--ledger", ledger.path])
        ])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        XCTAssertEqual(wire.call("echo", #"{"text":"before"}"#, id: 1, session: session)?["result"]?["isError"]?.boolValue, false)

        // Take the database away: end every connection to it and rename it, so reconnecting fails.
        let name = try XCTUnwrap(gateway.database.connectionString.components(separatedBy: "dbname=").last?.components(separatedBy: " ").first)
        let admin = PostgresClient(configuration: try TestCluster.configuration())
        func rename(_ from: String, _ to: String) async throws {
            try await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [from])
            try await admin.query("ALTER DATABASE \"\(from)\" RENAME TO \"\(to)\"")
        }
        try await rename(name, name + "_away")
        let refused = wire.call("echo", #"{"text":"while the database is away"}"#, id: 2, session: session)
        XCTAssertEqual(refused?["result"]?["isError"]?.boolValue, true, "\(String(describing: refused))")
        XCTAssertTrue(refused?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("could not be recorded") == true)
        let ran = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
        XCTAssertFalse(ran.contains("while the database is away"), "the upstream never saw the unrecorded call")

        try await rename(name + "_away", name)
        await admin.shutdown()
        var after: JSONValue?
        for attempt in 0..<20 {
            after = wire.call("echo", #"{"text":"after"}"#, id: 10 + attempt, session: session)
            if after?["result"]?["isError"]?.boolValue == false { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTAssertEqual(after?["result"]?["isError"]?.boolValue, false, "back once the database is: \(String(describing: after))")
    }

    func testTheStdioFrontAppliesTheSamePolicyAndLog() async throws {
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": try fixture(policy: "version: \"1\"\ndefault: allow\nhide: [delete_file]\ntools:\n  transfer: {action: deny, reason: no}\n")
        ])
        gateway.stop()
        let command = [tollgate, "stdio", "fixture", "--config", gateway.configPath, "--database", gateway.database.connectionString]
            .map { "'\($0)'" }.joined(separator: " ")
        for python in [try Peers.python2(), try Peers.python1()] {
            let run = try Peers.runClient(
                python: python,
                arguments: [
                    Peers.client, "--transport", "stdio", "--command", command, "--env", "TOLLGATE_AGENT_KEY=\(gateway.key)", "--steps",
                    JSONValue.array([
                        .object(["op": "list_tools"]),
                        .object(["op": "call_tool", "name": "echo", "arguments": .object(["text": "over stdio"])]),
                        .object(["op": "call_tool", "name": "transfer", "arguments": .object(["amount": 1, "to": "x"])]),
                        .object(["op": "call_tool", "name": "delete_file", "arguments": .object(["path": "/x"])]),
                    ]).canonicalJSON,
                ])
            XCTAssertEqual(run.status, 0, run.description)
            XCTAssertFalse(run.step(0)?["result"]?.arrayValue?.contains(.string("delete_file")) ?? true, run.description)
            XCTAssertEqual(run.step(1)?["result"]?["content"]?.arrayValue?.first?.stringValue, "over stdio", run.description)
            XCTAssertEqual(run.step(2)?["result"]?["isError"]?.boolValue, true, run.description)
            XCTAssertEqual(run.step(3)?["error"]?["code"]?.doubleValue, -32602, run.description)
        }
        let decided = try await gateway.events(type: "ToolCallDecided").map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        XCTAssertEqual(decided.map(\.decision).sorted(), ["allow", "allow", "deny", "deny", "hidden", "hidden"])
        XCTAssertTrue(decided.allSatisfy { $0.session.hasPrefix("stdio-") && $0.agent == "agent-a" })
        let noKey = try RunningProgram.run(tollgate, ["stdio", "fixture", "--config", gateway.configPath], environment: ["TOLLGATE_AGENT_KEY": ""])
        XCTAssertEqual(noKey.status, 64, noKey.stderr)
        let wrongKey = try RunningProgram.run(
            tollgate, ["stdio", "fixture", "--config", gateway.configPath, "--database", gateway.database.connectionString],
            environment: ["TOLLGATE_AGENT_KEY": "tg_wrong"])
        XCTAssertEqual(wrongKey.status, 78, wrongKey.stderr)
    }

    func testArgumentsAreStoredAsEachServerSays() async throws {
        let policy = "version: \"1\"\ndefault: allow\n"
        let command = try Peers.python2()
        let gateway = try await GatewayUnderTest.start(servers: [
            "full": .stdio(command: command, arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: policy),
            "hashed": .stdio(
                command: command, arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: policy, extra: "    store_arguments: hash\n"),
            "keys": .stdio(
                command: command, arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: policy, extra: "    store_arguments: keys\n"),
        ])
        defer { gateway.stop() }
        for server in ["full", "hashed", "keys"] {
            let wire = Wire(port: gateway.port, server: server, key: gateway.key)
            let session = try wire.initialize()
            XCTAssertEqual(wire.call("echo", #"{"text":"secret-\#(server)"}"#, id: 1, session: session)?["result"]?["isError"]?.boolValue, false)
        }
        let decided = try await gateway.events(type: "ToolCallDecided").map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        let byServer = Dictionary(uniqueKeysWithValues: decided.map { ($0.server, $0) })
        XCTAssertEqual(byServer["full"]?.arguments, ["text": "secret-full"])
        XCTAssertNil(byServer["hashed"]?.arguments, "only the hash is kept")
        XCTAssertEqual(byServer["hashed"]?.argumentsHash, ToolCallDecided.hash(arguments: ["text": "secret-hashed"]))
        XCTAssertEqual(byServer["keys"]?.arguments, ["text"], "only the names of the arguments")
        let raw = try await gateway.events().map { String(decoding: $0.data, as: UTF8.self) }.joined()
        XCTAssertFalse(raw.contains("secret-hashed") || raw.contains("secret-keys"), "redacted values appear nowhere in the log")
    }

    func testShutdownStopsEveryUpstreamChildWithItsProcessGroup() async throws {
        let marker = "/tmp/tollgate-marker-\(UUID().uuidString.prefix(8))"
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n", options: ["--ledger", marker])
        ])
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        _ = try wire.initialize()
        _ = try wire.initialize()
        func children() -> [String] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.filter { pid in
                guard Int(pid) != nil, let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return false }
                return command.contains(marker)
            }
        }
        XCTAssertEqual(children().count, 2, "one child per session")
        gateway.stop()
        XCTAssertEqual(gateway.process.isRunning, false)
        XCTAssertEqual(children(), [], "no upstream outlives the gateway")
    }

    func testTheStdioFrontAnswersMalformedAndOversizedLinesAndGoesOn() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": try fixture(policy: "version: \"1\"\ndefault: allow\n")], extraConfig: "limits: {max_body_bytes: 4096}\n")
        gateway.stop()
        let input = gateway.directory.appendingPathComponent("stdin.jsonl")
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "{not json",
            #"[{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
            #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":""# + String(repeating: "x", count: 10_000)
                + #""}}}"#,
            "\u{0}\u{1}\u{2}",
            "",
            #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}"#,
        ]
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let running = try RunningProgram(
            tollgate, ["stdio", "fixture", "--config", gateway.configPath, "--database", gateway.database.connectionString],
            environment: ["TOLLGATE_AGENT_KEY": gateway.key], stdin: input.path)
        XCTAssertEqual(try running.wait(timeout: .seconds(60)), 0, running.standardError.suffix(2000).description)
        let replies = running.standardOutput.split(separator: "\n").map { try? JSONValue(parsing: String($0)) }
        XCTAssertTrue(replies.allSatisfy { $0 != nil }, "stdout carries only JSON-RPC: \(running.standardOutput.prefix(2000))")
        let codes = replies.compactMap { $0?["error"]?["code"]?.doubleValue }
        XCTAssertEqual(codes.sorted(), [-32700, -32700, -32600, -32600].sorted(), running.standardOutput)
        let echo = replies.compactMap { $0 }.first { $0["id"] == 4 }
        XCTAssertEqual(echo?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "still here", running.standardOutput)
    }

    func testSIGHUPReloadsAPolicyWhoseFileLooksUnchanged() async throws {
        let first = "version: \"1\"\ndefault: allow\ntools:\n  echo: {action: allow}\n"
        let second = "version: \"1\"\ndefault: allow\ntools:\n  echo: {action: deny }\n"
        XCTAssertEqual(first.utf8.count, second.utf8.count, "same size, so only SIGHUP can tell")
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: first)])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        XCTAssertEqual(wire.call("echo", #"{"text":"1"}"#, id: 1, session: session)?["result"]?["isError"]?.boolValue, false)

        // A whole-second modification time survives setAttributes exactly: let the poll record it, then change the
        // content behind it.
        let path = gateway.directory.appendingPathComponent("policies/fixture.yaml").path
        let pinned = Date(timeIntervalSince1970: 1_700_000_000)
        try FileManager.default.setAttributes([.modificationDate: pinned], ofItemAtPath: path)
        try await Task.sleep(for: .seconds(3))
        try gateway.writePolicy("fixture", second)
        try FileManager.default.setAttributes([.modificationDate: pinned], ofItemAtPath: path)
        try await Task.sleep(for: .seconds(3))
        XCTAssertEqual(
            wire.call("echo", #"{"text":"2"}"#, id: 2, session: session)?["result"]?["isError"]?.boolValue, false,
            "same size and time: the poll does not see the change")

        gateway.process.signal(SIGHUP)
        var denied: JSONValue?
        for attempt in 0..<20 {
            denied = wire.call("echo", #"{"text":"3"}"#, id: 10 + attempt, session: session)
            if denied?["result"]?["isError"]?.boolValue == true { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTAssertEqual(denied?["result"]?["isError"]?.boolValue, true, "SIGHUP re-reads every policy file")
        XCTAssertTrue(gateway.process.isRunning, "and the gateway keeps running")
    }
}
