import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

@testable import TollgateServer

/// The smaller leaks of issue 18, each closed: a server with no policy lists nothing; argument values never reach a
/// recorded reason; a policy file caught half-written is never applied; reviewers see invisible characters escaped.
final class EnforcementLeaksTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    func fixture(policy: String, ledger: URL? = nil, extra: String = "") throws -> GatewayUnderTest.Server {
        .stdio(
            command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"] + (ledger.map { ["--ledger", $0.path] } ?? []),
            policy: policy, extra: extra)
    }

    func temporaryFile(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(name)-\(UUID().uuidString.prefix(8)).jsonl")
    }

    /// Whether a client step got the upstream's answer (not a JSON-RPC error, not an `isError` result).
    func ran(_ step: JSONValue?) -> Bool {
        step?["ok"]?.boolValue == true && step?["result"]?["isError"]?.boolValue != true
    }

    // MARK: - No policy at startup

    func testWithoutALoadedPolicyNoToolIsListedAndEveryCallIsRefusedUntilOneLoads() async throws {
        let ledger = temporaryFile("ledger")
        let good = "version: \"1\"\ndefault: allow\nhide: [delete_file]\n"
        // Invalid at startup (`alow`): the server has no policy, and its `hide` must not leak through the listing.
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": try fixture(policy: "version: \"1\"\ndefault: alow\nhide: [delete_file]\n", ledger: ledger)
        ])
        defer { gateway.stop() }
        XCTAssertTrue(gateway.log.contains("policy file has errors"), gateway.log)
        let writer = Task {
            try await Task.sleep(for: .seconds(5))
            try gateway.writePolicy("fixture", good)
        }
        let run = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("fixture"), key: gateway.key, mode: "legacy",
            steps: [
                ["op": "list_tools"],
                ["op": "call_tool", "name": "echo", "arguments": ["text": "while no policy"]],
                ["op": "call_tool", "name": "delete_file", "arguments": ["path": "/while-no-policy"]],
                ["op": "wait_notification", "method": "notifications/tools/list_changed", "timeout": 30],
                ["op": "list_tools"],
                ["op": "call_tool", "name": "echo", "arguments": ["text": "once loaded"]],
            ])
        _ = try await writer.value
        XCTAssertEqual(run.status, 0, run.description)
        XCTAssertEqual(run.step(0)?["result"]?.arrayValue, [], "no policy: no tool is listed, so no hidden one is: \(run)")
        XCTAssertFalse(ran(run.step(1)), "refused while no policy is loaded: \(run)")
        XCTAssertFalse(ran(run.step(2)), "\(run)")
        XCTAssertEqual(run.step(3)?["ok"]?.boolValue, true, "the first policy to load tells the agent the list changed: \(run)")
        let listed = run.step(4)?["result"]?.arrayValue ?? []
        XCTAssertTrue(listed.contains("echo") && !listed.contains("delete_file"), "\(run)")
        XCTAssertEqual(run.step(5)?["result"]?["content"]?.arrayValue?.first?.stringValue, "once loaded", "\(run)")

        let executed = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
        XCTAssertFalse(executed.contains("while no policy") || executed.contains("while-no-policy"), executed)
        XCTAssertTrue(executed.contains("once loaded"), executed)
        let decided = try await gateway.events(type: "ToolCallDecided", atLeast: 3).map {
            try EventCoding.decode(ToolCallDecided.self, from: $0.data)
        }
        let refused = decided.filter { $0.rule == "policy" }
        XCTAssertEqual(refused.map(\.tool).sorted(), ["delete_file", "echo"], "\(decided)")
        XCTAssertTrue(refused.allSatisfy { $0.decision == "error" && ($0.reason ?? "").contains("no valid policy is loaded") }, "\(refused)")
    }

    // MARK: - A half-written policy file

    func testAPolicyFileCaughtHalfWrittenIsNeverApplied() async throws {
        let ledger = temporaryFile("ledger")
        let old = "version: \"1\"\ndefault: allow\ntools:\n  transfer: {action: deny, reason: the old policy}\n"
        // The new policy's first half is a valid policy on its own, and looser: it allows transfers.
        let half = "version: \"1\"\ndefault: allow\n"
        let full = half + "tools:\n  transfer: {action: deny, reason: the new policy}\n"
        let halfHash = try PolicyLoader.load(Data(half.utf8), fileName: "half.yaml").contentHash
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try fixture(policy: old, ledger: ledger)])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        func transfer(_ id: Int) -> String {
            wire.call("transfer", #"{"amount":1,"to":"x"}"#, id: id, session: session)?["result"]?["content"]?.arrayValue?.first?["text"]?
                .stringValue ?? "no answer"
        }
        XCTAssertTrue(transfer(1).contains("the old policy"))

        // Written in two chunks, 600 ms apart (less than the second it must settle), with calls in between.
        let handle = try FileHandle(forWritingTo: gateway.directory.appendingPathComponent("policies/fixture.yaml"))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(half.utf8))
        let written = ContinuousClock.now
        var id = 10
        while written.duration(to: .now) < .milliseconds(600) {
            XCTAssertTrue(transfer(id).contains("the old policy"), "a call while the file is half-written is decided by the old policy")
            id += 1
            try await Task.sleep(for: .milliseconds(50))
        }
        try handle.write(contentsOf: Data(full.dropFirst(half.utf8.count).utf8))
        try handle.close()

        var answer = ""
        for _ in 0..<60 {
            answer = transfer(id)
            id += 1
            if !answer.contains("the old policy") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertTrue(answer.contains("the new policy"), "the whole new policy applies once it has settled: \(answer)")
        let decided = try await gateway.events(type: "ToolCallDecided").map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        XCTAssertGreaterThan(decided.count, 5)
        XCTAssertFalse(decided.contains { $0.policyHash == halfHash }, "no call was decided by the half policy")
        XCTAssertFalse(gateway.log.contains(halfHash), "the half policy was never loaded: \(gateway.log.suffix(3000))")
        let executed = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
        XCTAssertFalse(executed.contains("transfer"), executed)
    }

    // MARK: - Argument values and recorded reasons

    func testArgumentValuesNeverReachARecordedReasonWhenArgumentsAreNotStored() async throws {
        let policy = """
            version: "1"
            default: allow
            tools:
              transfer:
                limits: [{counter: spend, window: day, max: 1000, increment_from: args.amount}]
              echo:
                limits: [{counter: echoes, window: hour, max: 1, scope: session}]
              add:
                rules: [{when: [{path: args.a, op: gt, value: 5}], action: deny}]
              delete_file: {action: require_approval, reason: deletes need a look, approval: {hold: 1s, timeout: 1h}}
            """
        // On both redacting modes: values the reasons used to quote (an amount that is not a number, a negative one,
        // one over the limit), a condition that cannot compare a value, a limit reached, a call held for approval.
        let gateway = try await GatewayUnderTest.start(servers: [
            "hashed": try fixture(policy: policy, extra: "    store_arguments: hash\n"),
            "keys": try fixture(policy: policy, extra: "    store_arguments: keys\n"),
        ])
        defer { gateway.stop() }
        for server in ["hashed", "keys"] {
            let run = try Peers.runClient(
                python: try Peers.python2(), url: gateway.url(server), key: gateway.key,
                steps: [
                    ["op": "call_tool", "name": "transfer", "arguments": ["amount": "CANARY-7f3a-amount", "to": "CANARY-7f3a-to"]],
                    ["op": "call_tool", "name": "transfer", "arguments": ["amount": 7_351_925.5, "to": "CANARY-7f3a-to"]],
                    ["op": "call_tool", "name": "transfer", "arguments": ["amount": -7_351_925, "to": "CANARY-7f3a-to"]],
                    ["op": "call_tool", "name": "add", "arguments": ["a": "CANARY-7f3a-a", "b": 7_351_925]],
                    ["op": "call_tool", "name": "echo", "arguments": ["text": "CANARY-7f3a-text"]],
                    ["op": "call_tool", "name": "echo", "arguments": ["text": "7351925"]],
                    ["op": "call_tool", "name": "delete_file", "arguments": ["path": "/CANARY-7f3a-path"], "timeout": 30],
                ])
            XCTAssertEqual(run.steps.count, 7, run.description)
            XCTAssertEqual(run.step(4)?["result"]?["content"]?.arrayValue?.first?.stringValue, "CANARY-7f3a-text", "the first echo ran")
            XCTAssertEqual(run.step(6)?["result"]?["structuredContent"]?["status"]?.stringValue, "pending_approval", run.description)
            // The agent is told why, in the same words as the log.
            let told = [0, 1, 2, 3, 5].compactMap { run.step($0)?["result"]?["content"]?.arrayValue?.first?.stringValue }.joined(
                separator: "\n")
            XCTAssertTrue(told.contains("args.amount must be a non-negative number"), told)
            XCTAssertTrue(told.contains("this call alone (its args.amount)"), told)
            XCTAssertTrue(told.contains("args.a must be a number to be compared, found a string"), told)
            XCTAssertTrue(told.contains("limit reached on `echoes`"), told)
            XCTAssertFalse(told.contains("CANARY") || told.contains("7351925"), told)
        }
        _ = try await gateway.events(type: "ToolCallCompleted", atLeast: 2)
        let events = try await gateway.events()
        XCTAssertEqual(events.filter { $0.type == "ApprovalRequested" }.count, 2, "\(events.map(\.type))")
        let decided = try events.filter { $0.type == "ToolCallDecided" }.map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        XCTAssertEqual(decided.filter { $0.decision == "deny" }.count, 8, "three transfers and an add on each server: \(decided.map(\.reason))")
        XCTAssertEqual(decided.filter { $0.decision == "limited" }.count, 2, "\(decided.map(\.reason))")
        for event in events {
            let stored = String(decoding: event.data, as: UTF8.self) + String(decoding: event.metadata, as: UTF8.self)
            XCTAssertFalse(stored.contains("CANARY") || stored.contains("7351925"), "\(event.type): \(stored)")
        }
    }

    // MARK: - What reviewers see

    func testASlackMessageShowsABidiOverrideInTheArgumentsEscaped() throws {
        let now = Date()
        let arguments: JSONValue = ["amount": 42, "to": "acct_1\u{202E}9999\u{202C}", "memo": "a\u{200B}b"]
        let requested = ApprovalRequested(
            approvalID: UUID(), callID: UUID(), agent: "agent\u{2066}x", grant: "g", session: "s", server: "pay", tool: "transfer\u{200F}",
            arguments: arguments, argumentsHash: ToolCallDecided.hash(arguments: arguments), argumentsStorage: "full", policyHash: "sha256:x",
            rule: "tools.transfer", reason: "look\u{202E}closely", quorum: 1, reviewers: [], category: "financial", requestedAt: now,
            expiresAt: now.addingTimeInterval(3600))
        let slack = WebhookMessage.body(.requested, approval: Approval(requested), at: now, format: .slack, baseURL: "https://tollgate.example.com")
        let message = try JSONValue(parsing: slack)
        let details = message["blocks"]?.arrayValue?.first?["text"]?["text"]?.stringValue ?? ""
        XCTAssertTrue(details.contains(#""to":"acct_1\u202E9999\u202C""#), details)
        XCTAssertTrue(details.contains(#""memo":"a\u200Bb""#), details)
        XCTAssertTrue(details.contains(#"look\u202Eclosely"#), details)
        XCTAssertTrue(message["text"]?.stringValue?.contains(#"agent\u2066x wants to call pay/transfer\u200F"#) == true, slack)
        XCTAssertFalse(
            message.canonicalJSON.unicodeScalars.contains(where: String.isInvisible), "nothing a reader cannot see reaches the message")
        // The generic format is data for programs: exact.
        let generic = try JSONValue(parsing: WebhookMessage.body(.requested, approval: Approval(requested), at: now, format: .generic, baseURL: ""))
        XCTAssertEqual(generic["data"]?["arguments"], arguments)
    }

    func testApprovalsShowEscapesABidiOverrideAndItsJSONStaysExact() async throws {
        let policy = "version: \"1\"\ndefault: allow\ntools:\n  transfer: {action: require_approval, approval: {hold: 1s, timeout: 1h}}\n"
        let gateway = try await GatewayUnderTest.start(servers: ["pay": try fixture(policy: policy)], reviewers: ApprovalFlowTests.reviewers)
        defer { gateway.stop() }
        let disguised = "acct_1\u{202E}9999"
        let run = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("pay"), key: gateway.key,
            steps: [["op": "call_tool", "name": "transfer", "arguments": ["amount": 5, "to": .string(disguised)], "timeout": 30]])
        XCTAssertEqual(run.step(0)?["result"]?["structuredContent"]?["status"]?.stringValue, "pending_approval", run.description)
        let pending = await gateway.awaitApprovals(as: "alice")
        let id = try XCTUnwrap(pending.first?["id"]?.stringValue, gateway.log)
        let environment = [
            "TOLLGATE_SERVER": "http://127.0.0.1:\(gateway.port)", "TOLLGATE_TOKEN": gateway.tokens["alice"]!, "XDG_CONFIG_HOME": "/nonexistent",
        ]
        let show = try RunningProgram.run(RunningProgram.tollgateBinary, ["approvals", "show", id], environment: environment, timeout: .seconds(30))
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertTrue(show.stdout.contains(#""to":"acct_1\u202E9999""#), show.stdout)
        XCTAssertFalse(show.stdout.unicodeScalars.contains("\u{202E}"), show.stdout)
        let json = try RunningProgram.run(
            RunningProgram.tollgateBinary, ["approvals", "show", id, "--format", "json"], environment: environment, timeout: .seconds(30))
        XCTAssertEqual(try JSONValue(parsing: json.stdout)["arguments"]?["to"]?.stringValue, disguised, "JSON for scripts is exact")
    }
}
