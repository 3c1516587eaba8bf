import Crypto
import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Per-agent budgets for what one agent can make the gateway keep: refused calls stored with bounded arguments, a
/// budget of refusals recorded one by one per minute, a cap on pending approval requests, and webhooks coalesced for
/// a burst of requests. Raw requests on the wire, the fixture MCP server's ledger, real webhook receivers.
final class AgentBudgetTests: XCTestCase {
    static let denyPolicy = """
        version: "1"
        default: allow
        tools:
          echo: {action: deny, reason: "echo is off today"}
        """

    static let approvalPolicy = """
        version: "1"
        default: allow
        tools:
          transfer: {action: require_approval, approval: {hold: 1s, timeout: 1h}}
        """

    func ledger() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ledger-\(UUID().uuidString.prefix(8)).jsonl")
    }

    func start(policy: String, ledger: URL, extraConfig: String = "", reviewers: [String: String] = [:]) async throws -> GatewayUnderTest {
        try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path], policy: policy)
            ],
            reviewers: reviewers, extraConfig: extraConfig)
    }

    static func call(id: String, tool: String, arguments: String) -> String {
        #"{"jsonrpc":"2.0","id":"# + id + #","method":"tools/call","params":{"name":""# + tool + #"","arguments":"# + arguments + "}}"
    }

    /// Sends every body on a connection of its own before reading any answer (calls held for approval wait side by
    /// side), and returns the answers' JSON bodies in order.
    func postAll(_ bodies: [String], wire: GatewayBadInputTests.Wire, session: String) -> [JSONValue?] {
        let sockets = bodies.map { body -> Int32? in
            guard let socket = HTTPProbe.connect(port: wire.port, timeout: .seconds(30)) else { return nil }
            let request = Array(
                ("POST /mcp/\(wire.server) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                    + "Accept: application/json\r\nAuthorization: Bearer \(wire.key)\r\nMcp-Session-Id: \(session)\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)").utf8)
            _ = request.withUnsafeBytes { send(socket, $0.baseAddress!, request.count, Int32(MSG_NOSIGNAL)) }
            return socket
        }
        return sockets.map { socket in
            guard let socket else { return nil }
            defer { close(socket) }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16384)
            while true {
                let count = recv(socket, &buffer, buffer.count, 0)
                if count <= 0 { break }
                received += buffer[0..<count]
            }
            let text = String(decoding: received, as: UTF8.self)
            guard let start = text.firstIndex(of: "{"), let end = text.lastIndex(of: "}") else { return nil }
            return try? JSONValue(parsing: String(text[start...end]))
        }
    }

    func ledgerLines(_ ledger: URL) -> [Substring] {
        ((try? String(contentsOf: ledger, encoding: .utf8)) ?? "").split(separator: "\n")
    }

    // MARK: - Bounded arguments

    func testARefusedCallWithBigArgumentsIsStoredWithItsHashSizeAndKeysOnlyOverHTTPAndStdio() async throws {
        let ledger = ledger()
        defer { try? FileManager.default.removeItem(at: ledger) }
        let gateway = try await start(policy: Self.denyPolicy, ledger: ledger)
        defer { gateway.stop() }
        let wire = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()

        let arguments = #"{"text":""# + String(repeating: "x", count: 900 << 10) + #"","zeta":1,"alpha":[1,2]}"#
        let canonical = Array(try JSONValue(parsing: arguments).canonicalJSON.utf8)
        let id = "\"" + String(repeating: "i", count: 250) + "\""
        let response = wire.post(Self.call(id: id, tool: "echo", arguments: arguments), session: session, accept: "application/json")
        XCTAssertEqual(response.status, 200, response.body.prefix(300).description)
        let answer = try JSONValue(parsing: response.body)
        XCTAssertEqual(answer["result"]?["isError"]?.boolValue, true, response.body.prefix(300).description)
        XCTAssertTrue(answer["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("echo is off today") == true, response.body)
        XCTAssertEqual(answer["id"]?.stringValue?.count, 250, "the id is echoed back whole")
        let small = wire.call("echo", #"{"text":"hi"}"#, id: 3, session: session)
        XCTAssertEqual(small?["result"]?["isError"]?.boolValue, true)

        let decided = try await gateway.events(type: ToolCallDecided.type, atLeast: 2)
        XCTAssertEqual(decided.count, 2)
        let big = try EventCoding.decode(ToolCallDecided.self, from: decided[0].data)
        XCTAssertLessThan(decided[0].data.count, 2048, "the event is bounded: \(decided[0].data.count) bytes")
        XCTAssertEqual(big.argumentsStorage, "summary")
        XCTAssertNil(big.arguments)
        XCTAssertEqual(big.argumentsSummary, ArgumentsSummary(bytes: canonical.count, keys: ["alpha", "text", "zeta"], keysOmitted: 0))
        XCTAssertEqual(big.argumentsHash, Hex.lowercase(SHA256.hash(data: canonical)))
        XCTAssertEqual(big.requestID.utf8.count, 252)
        let kept = try EventCoding.decode(ToolCallDecided.self, from: decided[1].data)
        XCTAssertEqual(kept.argumentsStorage, "full", "arguments under the bound are kept as configured")
        XCTAssertEqual(kept.arguments, ["text": "hi"])
        XCTAssertNil(kept.argumentsSummary)
        print("a denied call with \(canonical.count) bytes of arguments and a 252-byte id: an event of \(decided[0].data.count) bytes")

        // What people read: `audit replay` and `events tail` say the arguments were summarized.
        let database = ["--database", gateway.database.connectionString]
        let replay = try RunningProgram.run(RunningProgram.tollgateBinary, ["audit", "replay", "--format", "jsonl"] + database)
        XCTAssertEqual(replay.status, 0, replay.stderr)
        let first = try JSONValue(parsing: String(replay.stdout.split(separator: "\n").first ?? ""))
        XCTAssertEqual(first["arguments_storage"]?.stringValue, "summary")
        XCTAssertEqual(first["arguments_summary"]?["bytes"]?.doubleValue, Double(canonical.count))
        let table = try RunningProgram.run(RunningProgram.tollgateBinary, ["audit", "replay"] + database)
        XCTAssertTrue(table.stdout.contains("summary (\(canonical.count) bytes)"), table.stdout)
        let tail = try RunningProgram.run(RunningProgram.tollgateBinary, ["events", "tail"] + database)
        XCTAssertTrue(tail.stdout.contains("[arguments over the bound, not stored: \(canonical.count) bytes"), tail.stdout)

        // The stdio front, raw lines: the same bound.
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wire","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            Self.call(id: "\"stdio-big\"", tool: "echo", arguments: arguments),
        ]
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-stdin-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: input) }
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
        let front = try RunningProgram(
            RunningProgram.tollgateBinary, ["stdio", "fixture", "--config", gateway.configPath] + database,
            environment: ["TOLLGATE_AGENT_KEY": gateway.key], stdin: input.path)
        XCTAssertEqual(try front.wait(timeout: .seconds(60)), 0, front.standardError.suffix(2000).description)
        XCTAssertTrue(front.standardOutput.contains("echo is off today"), front.standardOutput.prefix(2000).description)
        let all = try await gateway.events(type: ToolCallDecided.type, atLeast: 3)
        let stdio = try EventCoding.decode(ToolCallDecided.self, from: try XCTUnwrap(all.last).data)
        XCTAssertEqual(stdio.requestID, "\"stdio-big\"")
        XCTAssertEqual(stdio.argumentsSummary?.bytes, canonical.count)
        XCTAssertLessThan(try XCTUnwrap(all.last).data.count, 2048)
        XCTAssertTrue(ledgerLines(ledger).isEmpty, "nothing reached the upstream")
    }

    // MARK: - Refusals recorded per minute

    func testRefusalsPastAnAgentsBudgetAreAnsweredAndCountedInOneSummaryEvent() async throws {
        let ledger = ledger()
        defer { try? FileManager.default.removeItem(at: ledger) }
        let gateway = try await start(policy: Self.denyPolicy, ledger: ledger, extraConfig: "limits: {max_recorded_refusals_per_minute: 5}\n")
        let wireA = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let wireB = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: try XCTUnwrap(gateway.keys["agent-b"]))
        let sessionA = try wireA.initialize()
        let sessionB = try wireB.initialize()
        for n in 0..<20 {
            let answer = wireA.call("echo", #"{"text":"n\#(n)"}"#, id: 10 + n, session: sessionA)
            XCTAssertEqual(answer?["result"]?["isError"]?.boolValue, true, "every refusal is answered: \(String(describing: answer))")
            XCTAssertTrue(answer?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("echo is off today") == true)
        }
        for n in 0..<3 {
            XCTAssertEqual(wireB.call("echo", #"{"text":"b\#(n)"}"#, id: 50 + n, session: sessionB)?["result"]?["isError"]?.boolValue, true)
        }
        let metrics = gateway.api("GET", "/metrics", as: nil).text
        XCTAssertTrue(metrics.contains(#"tollgate_refusals_summarized_total{server="fixture"} 15"#), metrics)
        XCTAssertTrue(gateway.log.contains("past its budget of refusals"), gateway.log.suffix(3000).description)

        // The minute has not ended: a clean stop writes the summary.
        gateway.stop()
        let decided = try await gateway.events(type: ToolCallDecided.type).map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        XCTAssertEqual(decided.filter { $0.agent == "agent-a" }.count, 5, "agent-a's budget")
        XCTAssertEqual(decided.filter { $0.agent == "agent-b" }.count, 3, "another agent has its own budget")
        let summaries = try await gateway.events(type: RefusalsSummarized.type)
        XCTAssertEqual(summaries.count, 1, gateway.log.suffix(3000).description)
        let summary = try EventCoding.decode(RefusalsSummarized.self, from: try XCTUnwrap(summaries.first).data)
        XCTAssertEqual(summary.agent, "agent-a")
        XCTAssertEqual(summary.recorded, 5)
        XCTAssertEqual(summary.summarized, 15)
        XCTAssertEqual(summary.entries, [.init(server: "fixture", tool: "echo", decision: "deny", reason: "echo is off today", count: 15)])
        XCTAssertEqual(summary.otherCount, 0)
        XCTAssertTrue(ledgerLines(ledger).isEmpty)
    }

    // MARK: - Pending approval requests

    func testAnAgentsNextCallPastItsPendingApprovalCapIsRefusedAtOnceWithNothingForwardedOrNotified() async throws {
        let ledger = ledger()
        defer { try? FileManager.default.removeItem(at: ledger) }
        let receiver = try await WebhookTests.Receiver(secrets: [])
        defer { receiver.stop() }
        let secret = WebhookSecret.generate()
        let gateway = try await start(
            policy: Self.approvalPolicy, ledger: ledger,
            extraConfig: """
                limits: {max_pending_approvals: 3}
                public_url: https://tollgate.example.com
                webhooks:
                  - {name: reviewers, url: "\(receiver.url)", secrets: ["\(secret.text)"], events: [approval.requested], coalesce: off}

                """, reviewers: ["alice": "reviewer"])
        defer { gateway.stop() }
        let wire = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        func transfer(_ amount: Int) -> JSONValue? {
            wire.call("transfer", #"{"amount":\#(amount),"to":"bob"}"#, id: amount, session: session)
        }
        let first = postAll(
            (1...3).map { Self.call(id: "\($0)", tool: "transfer", arguments: #"{"amount":\#($0),"to":"bob"}"#) }, wire: wire, session: session)
        for answer in first {
            XCTAssertEqual(answer?["result"]?["structuredContent"]?["status"]?.stringValue, "pending_approval", "\(String(describing: answer))")
        }
        for amount in 4...5 {
            let started = ContinuousClock.now
            let answer = transfer(amount)
            XCTAssertLessThan(started.duration(to: .now), .seconds(1), "refused at once")
            XCTAssertEqual(answer?["result"]?["isError"]?.boolValue, true, "\(String(describing: answer))")
            let text = answer?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue ?? ""
            XCTAssertTrue(text.contains("already has 3 approval requests pending"), text)
            XCTAssertTrue(text.contains("limits.max_pending_approvals is 3"), text)
            XCTAssertEqual(answer?["result"]?["_meta"]?["io.tollgate/decision"]?["outcome"]?.stringValue, "limited")
            XCTAssertNil(answer?["result"]?["structuredContent"]?["approvalId"])
        }
        let pending = await gateway.awaitApprovals(status: "pending", count: 3, as: "alice")
        XCTAssertEqual(pending.count, 3)
        let metrics = gateway.api("GET", "/metrics", as: nil).text
        XCTAssertTrue(metrics.contains(#"tollgate_pending_approvals_refused_total{server="fixture"} 2"#), metrics)

        // A decision frees a slot.
        let id = try XCTUnwrap(pending.first?["id"]?.stringValue)
        XCTAssertEqual(gateway.api("POST", "/v1/approvals/\(id)/deny", as: "alice", body: #"{"reason":"no"}"#).status, 200)
        XCTAssertEqual(transfer(6)?["result"]?["structuredContent"]?["status"]?.stringValue, "pending_approval")

        // Recorded as refused by the cap; no request, no webhook, nothing forwarded.
        let decided = try await gateway.events(type: ToolCallDecided.type, atLeast: 6).map {
            try EventCoding.decode(ToolCallDecided.self, from: $0.data)
        }
        let refused = decided.filter { $0.rule == GateRefusal.maxPendingRule }
        XCTAssertEqual(refused.count, 2)
        XCTAssertEqual(refused.map(\.decision), ["limited", "limited"])
        XCTAssertTrue(refused.allSatisfy { $0.approvalID == nil })
        let requested = try await gateway.events(type: "ApprovalRequested")
        XCTAssertEqual(requested.count, 4)
        let delivered = await receiver.await(4)
        try await Task.sleep(for: .milliseconds(700))
        XCTAssertEqual(receiver.requests.count, 4, "one webhook per request made, none for the refused calls: \(delivered.count)")
        XCTAssertTrue(ledgerLines(ledger).isEmpty, "nothing was forwarded: \(ledgerLines(ledger))")
    }

    // MARK: - Coalesced webhooks

    func testABurstOfOneAgentsApprovalRequestsIsOneMessageAfterTheFirstForEveryEndpointAndFormat() async throws {
        let ledger = ledger()
        defer { try? FileManager.default.removeItem(at: ledger) }
        let secret = WebhookSecret.generate()
        let generic = try await WebhookTests.Receiver(secrets: [secret], behaviour: ["--reject-unverified"])
        let slack = try await WebhookTests.Receiver(secrets: [secret])
        defer {
            generic.stop()
            slack.stop()
        }
        let gateway = try await start(
            policy: Self.approvalPolicy, ledger: ledger,
            extraConfig: """
                public_url: https://tollgate.example.com
                webhooks:
                  - {name: reviewers, url: "\(generic.url)", secrets: ["\(secret.text)"], events: [approval.requested], coalesce: 3s}
                  - {name: chat, url: "\(slack.url)", secrets: ["\(secret.text)"], events: [approval.requested], coalesce: 3s, format: slack}

                """, reviewers: ["alice": "reviewer"])
        defer { gateway.stop() }
        let wireA = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let wireB = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: try XCTUnwrap(gateway.keys["agent-b"]))
        let sessionA = try wireA.initialize()
        let sessionB = try wireB.initialize()
        let started = ContinuousClock.now
        let answers = postAll(
            (1...8).map { Self.call(id: "\($0)", tool: "transfer", arguments: #"{"amount":\#($0),"to":"bob"}"#) }, wire: wireA, session: sessionA)
        for answer in answers {
            XCTAssertEqual(answer?["result"]?["structuredContent"]?["status"]?.stringValue, "pending_approval", "\(String(describing: answer))")
        }
        let ofB = postAll([Self.call(id: "1", tool: "transfer", arguments: #"{"amount":99,"to":"carol"}"#)], wire: wireB, session: sessionB)
        XCTAssertEqual(ofB.first??["result"]?["structuredContent"]?["status"]?.stringValue, "pending_approval")
        let pending = await gateway.awaitApprovals(status: "pending", count: 9, as: "alice")
        let ofA = Set(pending.filter { $0["agent"]?.stringValue == "agent-a" }.compactMap { $0["id"]?.stringValue })
        XCTAssertEqual(ofA.count, 8)

        // Generic: agent-a's first request at once, the seven after it as one burst when the window ends; agent-b's own.
        let messages = await generic.await(3)
        try await Task.sleep(for: .seconds(3))
        XCTAssertEqual(generic.requests.count, 3, "\(generic.requests.map { $0["body"]?.stringValue?.prefix(200) ?? "" })")
        let bodies = try generic.requests.map { try JSONValue(parsing: $0["body"]?.stringValue ?? "") }
        XCTAssertTrue(messages.allSatisfy { $0["verified"]?.boolValue == true })
        let singles = bodies.filter { $0["type"]?.stringValue == "approval.requested" }
        XCTAssertEqual(Set(singles.compactMap { $0["data"]?["agent"]?.stringValue }), ["agent-a", "agent-b"])
        let burst = try XCTUnwrap(bodies.first { $0["type"]?.stringValue == "approval.requested.burst" })
        XCTAssertEqual(burst["data"]?["agent"]?.stringValue, "agent-a")
        XCTAssertEqual(burst["data"]?["count"]?.doubleValue, 7)
        XCTAssertEqual(burst["data"]?["text"]?.stringValue, "Approval needed: agent agent-a: 7 more requests pending")
        let listed = Set(burst["data"]?["approvals"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [])
        let first = try XCTUnwrap(singles.first { $0["data"]?["agent"]?.stringValue == "agent-a" }?["data"]?["id"]?.stringValue)
        XCTAssertEqual(listed.union([first]), ofA, "every request is told once: the first alone, the rest in the burst")
        XCTAssertEqual(
            burst["data"]?["links"]?["pending"]?.stringValue, "https://tollgate.example.com/v1/approvals?status=pending&agent=agent-a")
        XCTAssertEqual(burst["data"]?["links"]?["page"]?.stringValue, "https://tollgate.example.com/ui/pending?agent=agent-a")
        XCTAssertTrue(
            burst["data"]?["approvals"]?.arrayValue?.allSatisfy {
                $0["links"]?["page"]?.stringValue == "https://tollgate.example.com/ui/approvals/\($0["id"]?.stringValue ?? "")"
            } == true)

        // Slack: the same three messages in its format.
        _ = await slack.await(3)
        XCTAssertEqual(slack.requests.count, 3)
        let texts = try slack.requests.map { try JSONValue(parsing: $0["body"]?.stringValue ?? "")["text"]?.stringValue ?? "" }
        XCTAssertTrue(texts.contains("Approval needed: agent agent-a: 7 more requests pending"), "\(texts)")
        let slackBurst = try XCTUnwrap(slack.requests.compactMap { $0["body"]?.stringValue }.first { $0.contains("7 more requests") })
        XCTAssertTrue(slackBurst.contains("<https://tollgate.example.com/ui/pending?agent=agent-a|"), slackBurst)
        XCTAssertTrue(slackBurst.contains("<https://tollgate.example.com/ui/approvals/"), slackBurst)
        // A rebuild of the outbox (or a second gateway's projector) queues nothing again: every request is told once.
        let rebuild = try RunningProgram.run(
            RunningProgram.tollgateBinary,
            ["projections", "rebuild", "webhooks", "--config", gateway.configPath, "--database", gateway.database.connectionString])
        XCTAssertEqual(rebuild.status, 0, rebuild.stderr)
        try await Task.sleep(for: .seconds(1))
        XCTAssertEqual(generic.requests.count, 3, "nothing sent again after a rebuild")
        XCTAssertEqual(slack.requests.count, 3)

        print("9 approval requests (8 from one agent in \(started.duration(to: .now))): 3 messages per endpoint")
    }
}
