import Foundation
import Synchronization
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// Rate limits hold exactly: many concurrent calls through two gateway processes on one database admit exactly the
/// limit, and the rate windows rebuilt from the log equal the live table. (Which failed calls give their quota back:
/// QuotaRefundTests.)
extension XCTestCase {
    /// The live `rate_windows` table equals the fold of the log's decisions, approvals used and outcomes.
    func assertRateWindowsEqualTheLog(_ gateway: GatewayUnderTest, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await RateLimitExactnessTests.assertRateWindowsEqualTheLog(gateway, file: file, line: line)
    }
}

final class RateLimitExactnessTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    /// Runs `body` on `count` threads at once (real concurrency, not the cooperative pool's width).
    func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let remaining = Mutex(count)
            for index in 0..<count {
                let thread = Thread {
                    body(index)
                    if remaining.withLock({ value -> Int in
                        value -= 1
                        return value
                    }) == 0 {
                        done.resume()
                    }
                }
                thread.start()
            }
        }
    }

    func testTwoGatewaysAndSixtyFourConcurrentCallsAdmitExactlyTheLimit() async throws {
        let limit = 10
        let policy = """
            version: "1"
            default: allow
            tools:
              echo:
                limits: [{counter: echo_rate, window: hour, max: \(limit), scope: global}]
            """
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: policy)])
        defer { gateway.stop() }
        let twin = try await gateway.startTwin()
        defer { twin.process.kill() }

        let wires = [Wire(port: gateway.port, server: "fixture", key: gateway.key), Wire(port: twin.port, server: "fixture", key: gateway.key)]
        let sessions = try wires.map { try $0.initialize() }
        let admitted = Mutex(0)
        let limited = Mutex(0)
        let other = Mutex([String]())
        await concurrently(64) { index in
            let side = index % 2
            let reply = wires[side].call("echo", #"{"text":"call \#(index)"}"#, id: 100 + index, session: sessions[side])
            switch reply?["result"]?["isError"]?.boolValue {
            case false: admitted.withLock { $0 += 1 }
            case true where reply?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("rate limit") == true:
                limited.withLock { $0 += 1 }
            default: other.withLock { $0.append("\(String(describing: reply))") }
            }
        }
        XCTAssertEqual(other.withLock { $0 }, [], "every call got an answer")
        XCTAssertEqual(admitted.withLock { $0 }, limit, "exactly the limit was admitted")
        XCTAssertEqual(limited.withLock { $0 }, 64 - limit)

        let decided = try await gateway.events(type: "ToolCallDecided").map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        XCTAssertEqual(decided.filter { $0.decision == "allow" }.count, limit, "the log agrees")
        XCTAssertEqual(decided.filter { $0.decision == "limited" }.count, 64 - limit)
        try await assertRateWindowsEqualTheLog(gateway)
    }

    /// The live `rate_windows` table equals the fold of the log's decisions, approvals used and outcomes.
    static func assertRateWindowsEqualTheLog(_ gateway: GatewayUnderTest, file: StaticString, line: UInt) async throws {
        // Outcomes are appended after the answer is sent: give the last ones a moment to land.
        try await Task.sleep(for: .milliseconds(300))
        var ledger = RateWindowLedger()
        for event in try await gateway.events() {
            switch event.type {
            case ToolCallDecided.type: ledger.apply(try EventCoding.decode(ToolCallDecided.self, from: event.data))
            case ToolCallCompleted.type: ledger.apply(try EventCoding.decode(ToolCallCompleted.self, from: event.data))
            case ApprovalConsumed.type: ledger.apply(try EventCoding.decode(ApprovalConsumed.self, from: event.data))
            default: break
            }
        }
        let client = PostgresClient(configuration: gateway.database)
        let rows = try await client.query(
            "SELECT server, counter, scope, window_start, window_seconds, count::float8 FROM tollgate.rate_windows")
        var table: [CounterKey: Double] = [:]
        for row in rows.rows {
            let key = CounterKey(
                server: try row.decode(String.self, 0), counter: try row.decode(String.self, 1), scope: try row.decode(String.self, 2),
                windowStart: try row.decode(Int64.self, 3), windowSeconds: try row.decode(Int.self, 4))
            table[key] = try row.decode(Double.self, 5)
        }
        await client.shutdown()
        XCTAssertFalse(table.isEmpty, file: file, line: line)
        XCTAssertEqual(table, ledger.counts, "rebuilding the windows from the log gives the live counts", file: file, line: line)
    }
}
