import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// A decision has a deadline (`limits.decision_deadline`): a database that hangs instead of failing gets the call
/// refused within it, nothing reaches the upstream, a decision that commits late is recorded as not sent, and calls
/// succeed again as soon as the database answers.
final class DecisionDeadlineTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    static let policy = """
        version: "1"
        default: allow
        """

    static let stateless = [("MCP-Protocol-Version", "2026-07-28")]

    static func call(_ id: Int) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"echo","arguments":{"text":"call \#(id)"},\#(StatelessSharingTests.meta)}}"#
    }

    func testADecisionTheLogCannotTakeIsRefusedWithinTheDeadlineAndNothingIsForwarded() async throws {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-deadline-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: ledger) }
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fx": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path],
                    policy: Self.policy)
            ],
            extraConfig: "limits: {decision_deadline: 1s}\n")
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fx", key: gateway.key)
        func ledgerLines() -> Int { ((try? String(contentsOf: ledger, encoding: .utf8)) ?? "").split(separator: "\n").count }
        func post(_ id: Int) -> (result: JSONValue?, seconds: Double) {
            let started = ContinuousClock.now
            let response = wire.post(Self.call(id), accept: "application/json", extra: Self.stateless, timeout: .seconds(20))
            let elapsed = started.duration(to: .now)
            return (
                (try? JSONValue(parsing: response.body))?["result"],
                Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            )
        }
        XCTAssertEqual(post(1).result?["isError"]?.boolValue, false)
        XCTAssertEqual(ledgerLines(), 1)
        // Its outcome is in the log, so no append of it is in flight when the log is locked: the next decision is.
        _ = try await gateway.events(type: ToolCallCompleted.type, atLeast: 1)

        // Another session locks the log: every append waits (up to the lock time-out, 10 s).
        let locker = try PostgresConnection.connect(try TestCluster.owner(of: gateway.database))
        defer { locker.close() }
        try locker.execute("BEGIN; LOCK TABLE tollgate.events IN ACCESS EXCLUSIVE MODE")
        var refusedIDs: [String] = []
        for id in 2...4 {
            let (result, seconds) = post(id)
            XCTAssertEqual(result?["isError"]?.boolValue, true, "\(String(describing: result))")
            let text = result?["content"]?.arrayValue?.first?["text"]?.stringValue ?? ""
            XCTAssertTrue(text.contains("the decision log did not answer in 1 s"), text)
            XCTAssertLessThan(seconds, 1.8, "refused within the deadline")
            XCTAssertGreaterThanOrEqual(seconds, 0.9)
            if let callID = result?["_meta"]?["io.tollgate/decision"]?["callId"]?.stringValue { refusedIDs.append(callID) }
        }
        XCTAssertEqual(ledgerLines(), 1, "nothing was forwarded while the log did not answer")

        // The database answers again: calls succeed at once.
        try locker.execute("ROLLBACK")
        let back = ContinuousClock.now
        var succeeded = false
        for id in 5...40 {
            if post(id).result?["isError"]?.boolValue == false {
                succeeded = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertTrue(succeeded)
        XCTAssertLessThan(back.duration(to: .now), .seconds(3), "calls succeed within seconds once the database answers")
        XCTAssertEqual(ledgerLines(), 2)

        // A refused call whose decision committed late (it was already sent to the database) reads as not sent, never as
        // forwarded; the others were dropped before they reached it.
        XCTAssertEqual(refusedIDs.count, 3)
        let deadline = ContinuousClock.now + .seconds(10)
        var streams: [String: [RecordedEvent]] = [:]
        repeat {
            let events = try await gateway.events()
            streams = Dictionary(grouping: events.filter { refusedIDs.map { "call-\($0)" }.contains($0.streamID) }, by: \.streamID)
            if streams.values.allSatisfy({ $0.count == 2 }) { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        XCTAssertFalse(streams.isEmpty, "the first refused call's decision was in flight and committed late")
        for (stream, events) in streams {
            XCTAssertEqual(events.map(\.type), [ToolCallDecided.type, ToolCallCompleted.type], stream)
            guard events.count == 2 else { continue }
            let completed = try EventCoding.decode(ToolCallCompleted.self, from: events[1].data)
            XCTAssertEqual(completed.outcome, "not_sent", stream)
            XCTAssertTrue(completed.error?.contains("did not answer") == true, "\(String(describing: completed.error))")
        }
    }

    /// An answer that waits for its outcome to be in the log (one the gateway makes up: the upstream timed out) waits at
    /// most the deadline for a log that does not answer; the outcome lands once it does.
    func testAnOutcomeTheLogCannotTakeHoldsTheAgentsAnswerAtMostTheDeadline() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fx": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)
            ],
            extraConfig: "limits: {decision_deadline: 1s, upstream_timeout: 2s}\n")
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fx", key: gateway.key)
        let locker = try PostgresConnection.connect(try TestCluster.owner(of: gateway.database))
        defer { locker.close() }
        // The shared upstream is started (and its tools listed) by a first call.
        var warm = false
        for id in 1...20 where !warm {
            let response = wire.post(Self.call(id), accept: "application/json", extra: Self.stateless)
            warm = (try? JSONValue(parsing: response.body))?["result"]?["isError"]?.boolValue == false
            if !warm { try await Task.sleep(for: .milliseconds(500)) }
        }
        XCTAssertTrue(warm, "the upstream did not start")
        _ = try await gateway.events(type: ToolCallCompleted.type, atLeast: 1)
        let decided = try await gateway.events(type: ToolCallDecided.type).count
        let body =
            #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{"seconds":5},\#(StatelessSharingTests.meta)}}"#
        let started = ContinuousClock.now
        let call = Task.detached {
            wire.post(body, accept: "application/json", extra: [("MCP-Protocol-Version", "2026-07-28")], timeout: .seconds(20))
        }
        // The decision is in the log once the call reaches the upstream; then the log stops answering.
        _ = try await gateway.events(type: ToolCallDecided.type, atLeast: decided + 1)
        try locker.execute("BEGIN; LOCK TABLE tollgate.events IN ACCESS EXCLUSIVE MODE")
        let response = await call.value
        let elapsed = started.duration(to: .now)
        XCTAssertNotNil((try? JSONValue(parsing: response.body))?["error"], response.body)
        XCTAssertLessThan(elapsed, .milliseconds(3800), "upstream_timeout (2 s) and at most the deadline (1 s) for the outcome")
        try locker.execute("ROLLBACK")
        let completed = try await gateway.events(type: ToolCallCompleted.type, atLeast: 2)
        let outcomes = try completed.map { try EventCoding.decode(ToolCallCompleted.self, from: $0.data).outcome }
        XCTAssertEqual(outcomes.last, "timed_out", "\(outcomes)")
    }
}
