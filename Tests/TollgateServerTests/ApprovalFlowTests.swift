import Foundation
import TollgateCore
import TollgatePostgres
import TollgateServer
import TollgateTestSupport
import XCTest

/// The approval workflow end to end: the official Python SDK client (`mcp` 2.3.0) through `tollgate serve` to a real
/// MCP server, reviewers deciding through `/v1`, and the tool's own ledger saying how often it really ran.
final class ApprovalFlowTests: XCTestCase {
    static let reviewers = ["alice": "reviewer", "bob": "reviewer", "carol": "auditor", "dave": "admin", "agent-a": "reviewer"]

    static func policy(hold: String = "20s", timeout: String = "1h", quorum: Int = 1) -> String {
        """
        version: "1"
        default: allow
        tools:
          transfer: {action: require_approval, reason: money moves, approval: {hold: \(hold), timeout: \(timeout), quorum: \(quorum)}}
        """
    }

    struct Fixture {
        let gateway: GatewayUnderTest
        let ledger: URL

        /// How many times the tool really ran with these arguments.
        func runs(amount: Double) -> Int {
            let text = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }.filter {
                $0["tool"]?.stringValue == "transfer" && $0["arguments"]?["amount"]?.doubleValue == amount
            }.count
        }
    }

    func start(policy: String) async throws -> Fixture {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-approvals-\(UUID().uuidString.prefix(8)).jsonl")
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "pay": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path], policy: policy)
            ],
            reviewers: Self.reviewers)
        return Fixture(gateway: gateway, ledger: ledger)
    }

    static func transfer(_ amount: Double, progress: Bool = false) -> JSONValue {
        var step: [String: JSONValue] = [
            "op": "call_tool", "name": "transfer", "arguments": ["amount": .number(amount), "to": "bob"], "timeout": 60,
        ]
        if progress { step["progress"] = true }
        return .object(step)
    }

    /// Runs the client in the background (its calls are held while the test decides).
    func client(_ fixture: Fixture, mode: String? = nil, steps: [JSONValue]) -> Task<Peers.ClientRun, any Error> {
        let python = Result { try Peers.python2() }
        let url = fixture.gateway.url("pay")
        let key = fixture.gateway.key
        return Task.detached { try Peers.runClient(python: try python.get(), url: url, key: key, mode: mode, steps: .array(steps)) }
    }

    func decide(_ fixture: Fixture, _ id: String, _ action: String, as reviewer: String, body: String = "{}") -> (status: Int, body: JSONValue?) {
        let answer = fixture.gateway.api("POST", "/v1/approvals/\(id)/\(action)", as: reviewer, body: body)
        return (answer.status, answer.body)
    }

    // MARK: - Held, then decided

    func testApprovedWhileHeldRunsTheToolOnceAndTheClientGetsItsResult() async throws {
        let fixture = try await start(policy: Self.policy())
        defer { fixture.gateway.stop() }
        let run = client(fixture, steps: [Self.transfer(11)])
        let pending = await fixture.gateway.awaitApprovals(as: "alice")
        let id = try XCTUnwrap(pending.first?["id"]?.stringValue, fixture.gateway.log)
        XCTAssertEqual(pending.first?["tool"]?.stringValue, "transfer")
        XCTAssertEqual(fixture.runs(amount: 11), 0, "nothing runs before the decision")
        let approved = decide(fixture, id, "approve", as: "alice", body: #"{"comment": "looks right"}"#)
        XCTAssertEqual(approved.status, 200)
        XCTAssertEqual(approved.body?["status"]?.stringValue, "approved")

        let result = try await run.value
        XCTAssertEqual(result.status, 0, result.description)
        let answer = result.step(0)?["result"]
        XCTAssertEqual(answer?["isError"]?.boolValue, false, result.description)
        XCTAssertEqual(answer?["structuredContent"]?["status"]?.stringValue, "transferred", result.description)
        XCTAssertEqual(fixture.runs(amount: 11), 1)

        let shown = fixture.gateway.api("GET", "/v1/approvals/\(id)", as: "carol").body
        XCTAssertEqual(shown?["consumed"]?.boolValue, true)
        XCTAssertEqual(shown?["arguments"]?["amount"]?.doubleValue, 11)
        XCTAssertEqual(shown?["rule"]?.stringValue, "tools.transfer")
        let types = try await fixture.gateway.events().map(\.type)
        XCTAssertEqual(types.filter { $0 == ApprovalConsumed.type }.count, 1, "\(types)")
        XCTAssertEqual(types.filter { $0 == ToolCallCompleted.type }.count, 1, "\(types)")
    }

    func testDeniedWhileHeldIsAToolErrorWithTheReviewersReasonAndProgressWasReported() async throws {
        let fixture = try await start(policy: Self.policy())
        defer { fixture.gateway.stop() }
        let run = client(fixture, mode: "legacy", steps: [Self.transfer(12, progress: true)])
        let waiting = await fixture.gateway.awaitApprovals(as: "bob")
        let id = try XCTUnwrap(waiting.first?["id"]?.stringValue, fixture.gateway.log)
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(decide(fixture, id, "deny", as: "bob", body: #"{"reason": "not during the freeze"}"#).status, 200)
        let result = try await run.value
        let answer = result.step(0)?["result"]
        XCTAssertEqual(answer?["isError"]?.boolValue, true, result.description)
        let text = answer?["content"]?.arrayValue?.first?.stringValue ?? ""
        XCTAssertTrue(text.contains("not during the freeze") && text.contains("bob"), text)
        XCTAssertEqual(answer?["structuredContent"]?["status"]?.stringValue, "denied")
        let progress = result.step(0)?["progress"]?.arrayValue ?? []
        XCTAssertFalse(progress.isEmpty, "a held call with a progress token hears how it is getting on: \(result)")
        XCTAssertTrue(progress.first?["message"]?.stringValue?.contains(id) == true, "\(progress)")
        XCTAssertEqual(fixture.runs(amount: 12), 0)
    }

    // MARK: - Given up while held

    /// A session on the raw wire, for agents the Python client does not play (JSON answers only, hang-ups).
    func wireSession(_ fixture: Fixture) throws -> (wire: GatewayBadInputTests.Wire, session: String) {
        let wire = GatewayBadInputTests.Wire(port: fixture.gateway.port, server: "pay", key: fixture.gateway.key)
        return (wire, try wire.initialize())
    }

    /// Approves `id` after its call was given up: the call never runs, and the approval is left for the agent's retry.
    func approveGivenUp(_ fixture: Fixture, _ id: String, amount: Double, _ what: String, line: UInt = #line) async throws {
        XCTAssertEqual(decide(fixture, id, "approve", as: "alice").status, 200, line: line)
        try await Task.sleep(for: .milliseconds(1500))
        XCTAssertEqual(fixture.runs(amount: amount), 0, "nobody waits for the call (\(what)): it does not run", line: line)
        let shown = fixture.gateway.api("GET", "/v1/approvals/\(id)", as: "carol").body
        XCTAssertEqual(shown?["status"]?.stringValue, "approved", line: line)
        XCTAssertEqual(shown?["consumed"]?.boolValue, false, "the approval is left for the agent's retry (\(what))", line: line)
    }

    func testAnAgentThatHangsUpWhileItsCallIsHeldDoesNotHaveItRunWhenApproved() async throws {
        let fixture = try await start(policy: Self.policy())
        defer { fixture.gateway.stop() }
        let (wire, session) = try wireSession(fixture)
        // Once for a JSON answer (the decision is made before the answer starts), once for one that could have been a
        // stream: the agent gives up after two seconds of a 20 s hold and closes its connection.
        for (amount, accept) in [(21.0, "application/json"), (22.0, "application/json, text/event-stream")] {
            let call =
                #"{"jsonrpc":"2.0","id":\#(Int(amount)),"method":"tools/call","params":{"name":"transfer","arguments":{"amount":\#(amount),"to":"bob"}}}"#
            let gaveUp = Task.detached { wire.post(call, session: session, accept: accept, timeout: .seconds(2)) }
            let pending = await fixture.gateway.awaitApprovals(as: "alice")
            let id = try XCTUnwrap(pending.first?["id"]?.stringValue, fixture.gateway.log)
            let answered = await gaveUp.value
            XCTAssertEqual(answered.status, 0, "the agent had no answer before it hung up: \(answered.body)")
            try await Task.sleep(for: .milliseconds(500))
            try await approveGivenUp(fixture, id, amount: amount, "Accept: \(accept)")
        }
        // The session goes on, and the retry runs on the approval.
        let retry = wire.call("transfer", #"{"amount":21.0,"to":"bob"}"#, id: 30, session: session)
        XCTAssertEqual(retry?["result"]?["isError"]?.boolValue, false, "\(String(describing: retry))")
        XCTAssertEqual(fixture.runs(amount: 21), 1)
    }

    func testAJSONCallCancelledWhileHeldIsAnsweredSoAndDoesNotRunWhenApproved() async throws {
        let fixture = try await start(policy: Self.policy())
        defer { fixture.gateway.stop() }
        let (wire, session) = try wireSession(fixture)
        let call = #"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"transfer","arguments":{"amount":23,"to":"bob"}}}"#
        let held = Task.detached { wire.post(call, session: session, accept: "application/json", timeout: .seconds(15)) }
        let pending = await fixture.gateway.awaitApprovals(as: "alice")
        let id = try XCTUnwrap(pending.first?["id"]?.stringValue, fixture.gateway.log)
        let cancel = #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"changed my mind"}}"#
        XCTAssertEqual(wire.post(cancel, session: session).status, 202)
        let answer = await held.value
        XCTAssertEqual(answer.status, 200, answer.body)
        let result = try JSONValue(parsing: answer.body)["result"]
        XCTAssertEqual(result?["isError"]?.boolValue, true, answer.body)
        XCTAssertTrue(answer.body.contains("was cancelled while it waited for approval"), answer.body)
        try await approveGivenUp(fixture, id, amount: 23, "notifications/cancelled")
    }

    func testAStatelessCallWhoseClientHangsUpWhileHeldDoesNotRunWhenApproved() async throws {
        let fixture = try await start(policy: Self.policy())
        defer { fixture.gateway.stop() }
        // mcp 2.3 at 2026-07-28 cancels only by closing the request's connection; it gives up after 3 s of the hold.
        var step = Self.transfer(24)
        step = .object((step.objectValue ?? [:]).merging(["cancel_after": 3]) { $1 })
        let run = client(fixture, mode: "2026-07-28", steps: [step, .object(["op": "sleep", "seconds": 0.5])])
        let pending = await fixture.gateway.awaitApprovals(as: "alice")
        let id = try XCTUnwrap(pending.first?["id"]?.stringValue, fixture.gateway.log)
        let result = try await run.value
        XCTAssertEqual(result.connected?["protocolVersion"]?.stringValue, "2026-07-28", result.description)
        try await approveGivenUp(fixture, id, amount: 24, "2026-07-28, connection closed")
    }

    // MARK: - The hold ends, the identical retry

    func testHoldTimeoutGivesPendingAndTheIdenticalRetryRunsOnceAfterApproval() async throws {
        let fixture = try await start(policy: Self.policy(hold: "1s"))
        defer { fixture.gateway.stop() }
        // Held for a second, then "pending"; the identical call while still pending joins the same request.
        let first = try await client(fixture, steps: [Self.transfer(13), Self.transfer(13)]).value
        let pendingA = first.step(0)?["result"]
        XCTAssertEqual(pendingA?["isError"]?.boolValue, true, first.description)
        XCTAssertEqual(pendingA?["structuredContent"]?["status"]?.stringValue, "pending_approval", first.description)
        let id = try XCTUnwrap(pendingA?["structuredContent"]?["approvalId"]?.stringValue)
        XCTAssertNotNil(pendingA?["structuredContent"]?["expiresAt"]?.stringValue)
        XCTAssertEqual(first.step(1)?["result"]?["structuredContent"]?["approvalId"]?.stringValue, id, "a retry while pending makes no new request")
        XCTAssertEqual(fixture.gateway.api("GET", "/v1/approvals?status=pending", as: "alice").body?["items"]?.arrayValue?.count, 1)

        XCTAssertEqual(decide(fixture, id, "approve", as: "alice").status, 200)
        // The identical retry runs once; the next identical one is held again as a new request; changed arguments
        // are not covered by the approval.
        let second = try await client(fixture, steps: [Self.transfer(13), Self.transfer(13), Self.transfer(14)]).value
        XCTAssertEqual(second.step(0)?["result"]?["isError"]?.boolValue, false, second.description)
        let again = second.step(1)?["result"]?["structuredContent"]
        XCTAssertEqual(again?["status"]?.stringValue, "pending_approval", second.description)
        XCTAssertNotEqual(again?["approvalId"]?.stringValue, id)
        let changed = second.step(2)?["result"]?["structuredContent"]
        XCTAssertEqual(changed?["status"]?.stringValue, "pending_approval", second.description)
        XCTAssertNotEqual(changed?["approvalId"]?.stringValue, id)
        XCTAssertNotEqual(changed?["approvalId"]?.stringValue, again?["approvalId"]?.stringValue)
        XCTAssertEqual(fixture.runs(amount: 13), 1)
        XCTAssertEqual(fixture.runs(amount: 14), 0)
    }

    func testAnExpiredRequestIsAToolErrorSayingSo() async throws {
        let fixture = try await start(policy: Self.policy(hold: "2s", timeout: "2s"))
        defer { fixture.gateway.stop() }
        let run = try await client(fixture, steps: [Self.transfer(15)]).value
        let answer = run.step(0)?["result"]
        XCTAssertEqual(answer?["isError"]?.boolValue, true, run.description)
        XCTAssertEqual(answer?["structuredContent"]?["status"]?.stringValue, "expired", run.description)
        XCTAssertTrue(answer?["content"]?.arrayValue?.first?.stringValue?.contains("expired") == true)
        let id = try XCTUnwrap(answer?["structuredContent"]?["approvalId"]?.stringValue)
        let late = decide(fixture, id, "approve", as: "alice")
        XCTAssertEqual(late.status, 409)
        XCTAssertEqual(late.body?["error"]?["code"]?.stringValue, "already_decided")
        XCTAssertEqual(late.body?["error"]?["outcome"]?["status"]?.stringValue, "expired")
        XCTAssertEqual(fixture.runs(amount: 15), 0)
        let expiredEvents = try await fixture.gateway.events(type: ApprovalExpired.type)
        XCTAssertEqual(expiredEvents.count, 1)
    }

    // MARK: - Who may decide, and races

    func testQuorumSelfApprovalRolesAndConcurrentDecisions() async throws {
        let fixture = try await start(policy: Self.policy(hold: "1s", quorum: 2))
        defer { fixture.gateway.stop() }
        let run = try await client(fixture, steps: [Self.transfer(21), Self.transfer(22), Self.transfer(23), Self.transfer(24)]).value
        let ids = (0..<4).compactMap { run.step($0)?["result"]?["structuredContent"]?["approvalId"]?.stringValue }
        XCTAssertEqual(ids.count, 4, run.description)

        // Quorum 2: the same reviewer twice is still pending.
        XCTAssertEqual(decide(fixture, ids[0], "approve", as: "alice").body?["status"]?.stringValue, "pending")
        let twice = decide(fixture, ids[0], "approve", as: "alice")
        XCTAssertEqual(twice.status, 409)
        XCTAssertEqual(twice.body?["error"]?["code"]?.stringValue, "already_granted")
        XCTAssertEqual(fixture.gateway.api("GET", "/v1/approvals/\(ids[0])", as: "alice").body?["status"]?.stringValue, "pending")
        // The agent that made the call cannot approve it, even holding a reviewer's token; an auditor cannot decide.
        let own = decide(fixture, ids[0], "approve", as: "agent-a")
        XCTAssertEqual(own.status, 403)
        XCTAssertEqual(own.body?["error"]?["code"]?.stringValue, "self_approval")
        XCTAssertEqual(decide(fixture, ids[0], "approve", as: "carol").status, 403)
        XCTAssertEqual(decide(fixture, ids[0], "approve", as: "bob").body?["status"]?.stringValue, "approved")

        // Two reviewers at once on each of three requests (both needed for the quorum... so approve vs deny): one
        // outcome each, and the loser is told what it was.
        for id in ids[1...] {
            XCTAssertEqual(decide(fixture, id, "approve", as: "dave").status, 200)
            let gateway = fixture.gateway
            async let approve = Task.detached { gateway.api("POST", "/v1/approvals/\(id)/approve", as: "alice", body: "{}") }.value
            async let deny = Task.detached { gateway.api("POST", "/v1/approvals/\(id)/deny", as: "bob", body: #"{"reason": "race"}"#) }.value
            let (a, d) = await (approve, deny)
            XCTAssertEqual([a.status, d.status].sorted(), [200, 409], "\(a.text) \(d.text)")
            let final = gateway.api("GET", "/v1/approvals/\(id)", as: "alice").body?["status"]?.stringValue
            let loser = a.status == 409 ? a.body : d.body
            XCTAssertEqual(loser?["error"]?["code"]?.stringValue, "already_decided")
            XCTAssertEqual(loser?["error"]?["outcome"]?["status"]?.stringValue, final)
            XCTAssertEqual(final, a.status == 200 ? "approved" : "denied")
        }
    }

    // MARK: - Crash safety and replay

    func testAGatewayKilledWhileACallIsHeldKeepsTheApprovalAndTheRetryRuns() async throws {
        let fixture = try await start(policy: Self.policy(hold: "30s"))
        defer { fixture.gateway.stop() }
        let held = client(fixture, steps: [Self.transfer(31)])
        let waiting = await fixture.gateway.awaitApprovals(as: "alice")
        let id = try XCTUnwrap(waiting.first?["id"]?.stringValue, fixture.gateway.log)
        try await fixture.gateway.killAndRestart()
        _ = try? await held.value  // the agent's connection died with the gateway
        let after = fixture.gateway.api("GET", "/v1/approvals/\(id)", as: "alice").body
        XCTAssertEqual(after?["status"]?.stringValue, "pending", "\(String(describing: after))")
        XCTAssertEqual(decide(fixture, id, "approve", as: "alice").status, 200)
        let retry = try await client(fixture, steps: [Self.transfer(31)]).value
        XCTAssertEqual(retry.step(0)?["result"]?["isError"]?.boolValue, false, retry.description)
        XCTAssertEqual(fixture.runs(amount: 31), 1)

        // The approvals table, emptied and rebuilt by replaying the log, equals the live one.
        let client = PostgresClient(configuration: fixture.gateway.database)
        defer { Task { await client.shutdown() } }
        func rows() async throws -> [String] {
            try await client.query("SELECT approval_id::text, version, status, consumed, state::text FROM tollgate.approvals ORDER BY 1").rows.map {
                try
                    "\($0.decode(String.self, 0)) \($0.decode(Int64.self, 1)) \($0.decode(String.self, 2)) \($0.decode(Bool.self, 3)) \($0.decode(String.self, 4))"
            }
        }
        let live = try await rows()
        XCTAssertEqual(live.count, 1)
        try await client.query("SELECT tollgate.reset_projection('approvals')")  // the runtime role may not DELETE
        let store = EventStore(client: client)
        defer { store.stop() }
        let runner = ProjectionRunner(store: store, projections: GatewayServer.projections())
        try await runner.rebuild("approvals")
        let rebuilt = try await rows()
        XCTAssertEqual(rebuilt, live)
    }

    // MARK: - Limits

    func testLimitsCountWhenAnApprovedCallIsReleasedAndAFullWindowKeepsTheApproval() async throws {
        let policy = """
            version: "1"
            default: allow
            tools:
              transfer:
                action: require_approval
                approval: {hold: 20s, timeout: 1h}
                limits: [{counter: transfers, window: hour, max: 1, scope: agent}]
            """
        let fixture = try await start(policy: policy)
        defer { fixture.gateway.stop() }
        // Both are held while the window is empty; the first released fills it.
        let first = client(fixture, steps: [Self.transfer(41)])
        let second = client(fixture, steps: [Self.transfer(42)])
        let pending = await fixture.gateway.awaitApprovals(count: 2, as: "alice")
        func id(_ amount: Double) -> String? {
            pending.first {
                fixture.gateway.api("GET", "/v1/approvals/\($0["id"]?.stringValue ?? "")", as: "alice").body?["arguments"]?["amount"]?.doubleValue
                    == amount
            }?[
                "id"]?.stringValue
        }
        let firstID = try XCTUnwrap(id(41), fixture.gateway.log)
        let secondID = try XCTUnwrap(id(42))
        XCTAssertEqual(decide(fixture, firstID, "approve", as: "alice").status, 200)
        let ran = try await first.value
        XCTAssertEqual(ran.step(0)?["result"]?["isError"]?.boolValue, false, ran.description)
        XCTAssertEqual(decide(fixture, secondID, "approve", as: "alice").status, 200)
        let stopped = try await second.value
        let answer = stopped.step(0)?["result"]
        XCTAssertEqual(answer?["isError"]?.boolValue, true, stopped.description)
        let text = answer?["content"]?.arrayValue?.first?.stringValue ?? ""
        XCTAssertTrue(text.contains("rate limit") && text.contains("approval still stands"), text)
        let shown = fixture.gateway.api("GET", "/v1/approvals/\(secondID)", as: "alice").body
        XCTAssertEqual(shown?["status"]?.stringValue, "approved")
        XCTAssertEqual(shown?["consumed"]?.boolValue, false, "a call the limits stopped did not use its approval")
        XCTAssertEqual(fixture.runs(amount: 41), 1)
        XCTAssertEqual(fixture.runs(amount: 42), 0)
        try await assertRateWindowsEqualTheLog(fixture.gateway)
    }
}
