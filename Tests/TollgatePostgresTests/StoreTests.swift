import Foundation
import TollgateTestSupport
import XCTest

@testable import TollgatePostgres

/// The stores on their own, with keys of their own (TollgatePostgres does not depend on TollgateCore): what each
/// statement does to its table.
final class StoreTests: XCTestCase {
    struct Window: RateWindowKey, Hashable {
        var server = "stripe"
        var counter: String
        var scope = "global"
        var windowStart: Int64 = 1_800_000_000
        var windowSeconds = 60
    }

    struct Reservation: RateWindowReservation {
        var key: Window
        var amount: Double
        var ceiling: Double
    }

    func testAWindowTakesReservationsUpToItsCeilingAndAReleaseGivesBack() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        let window = Window(counter: "calls")
        let admitted = try await client.withTransaction { connection in
            try (0..<3).map { _ in try RateWindowStore.reserve(window, amount: 1.5, ceiling: 3, on: connection) }
        }
        XCTAssertEqual(admitted, [true, true, false])
        try await client.withTransaction { connection in try RateWindowStore.release(window, amount: 0.5, on: connection) }
        let counts = try await client.withConnection { connection in
            (try RateWindowStore.count(window, on: connection), try RateWindowStore.count(Window(counter: "other"), on: connection))
        }
        XCTAssertEqual(counts.0, 2.5)
        XCTAssertEqual(counts.1, 0, "a window never reserved counts 0")
        await client.shutdown()
    }

    func testReserveAndAppendNamesTheReservationThatHadNoRoomAndAppendsOnlyTheAdmitted() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        let store = EventStore(client: client)
        defer { store.stop() }
        let full = Window(counter: "full")
        let open = Window(counter: "open")
        let decisions = [
            (stream: "call-one", event: NewEvent(type: "Decided", data: Array(#"{"n":1}"#.utf8))),
            (stream: "call-two", event: NewEvent(type: "Decided", data: Array(#"{"n":2}"#.utf8))),
        ]
        let reservations = [
            (decision: 1, reservation: Reservation(key: full, amount: 1, ceiling: 0)),
            (decision: 0, reservation: Reservation(key: open, amount: 2, ceiling: 5)),
        ]
        let refused = try await client.withTransaction { connection in
            try RateWindowStore.reserveAndAppend(reservations, decisions: decisions, on: connection)
        }
        XCTAssertEqual(refused, [nil, 0])
        let one = try await store.read(stream: "call-one")
        let two = try await store.read(stream: "call-two")
        XCTAssertEqual(one.map(\.type), ["Decided"])
        XCTAssertEqual(two.count, 0)
        let counts = try await client.withConnection { connection in
            (try RateWindowStore.count(open, on: connection), try RateWindowStore.count(full, on: connection))
        }
        XCTAssertEqual(counts.0, 2)
        XCTAssertEqual(counts.1, 0)
        await client.shutdown()
    }

    func testTheSealHeadIsTheLastSealInTransactionOrder() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        let seals = [
            SealStore.Seal(position: LogPosition(transactionID: 999, position: 7), chain: String(repeating: "a", count: 64)),
            SealStore.Seal(position: LogPosition(transactionID: 1000, position: 3), chain: String(repeating: "b", count: 64)),
        ]
        let empty = try await client.withConnection { connection in try SealStore.head(on: connection) }
        XCTAssertNil(empty)
        try await client.withTransaction { connection in try SealStore.append(seals, on: connection) }
        let (head, after, through) = try await client.withConnection { connection in
            (
                try SealStore.head(on: connection), try SealStore.seals(after: .start, through: nil, on: connection),
                try SealStore.seals(after: .start, through: seals[0].position, on: connection)
            )
        }
        XCTAssertEqual(head, seals[1], "1000 sorts after 999 as a transaction id, not as text")
        XCTAssertEqual(after, seals)
        XCTAssertEqual(through, [seals[0]])
        await client.shutdown()
    }

    func testADeliveryIsQueuedOnceClaimedByOneSenderAndListedWithItsAttempts() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        let outbox = WebhookOutboxStore(client: client)
        let approval = UUID()
        for _ in 0..<2 {
            try await client.withTransaction { connection in
                try WebhookOutboxStore.enqueue(
                    id: "msg_1", endpoint: "reviewers", eventType: "approval.requested", eventPosition: 1, approvalID: approval, body: "{}",
                    giveUpAt: Date().addingTimeInterval(3600), on: connection)
            }
        }
        let claimed = try await outbox.claim(endpoint: "reviewers", leaseSeconds: 60)
        let again = try await outbox.claim(endpoint: "reviewers", leaseSeconds: 60)
        XCTAssertEqual(claimed?.id, "msg_1")
        XCTAssertEqual(claimed?.attempt, 1)
        XCTAssertNil(again, "a leased delivery is not claimed twice")
        try await outbox.record(
            attempt: 1, of: "msg_1", startedAt: Date(), statusCode: 503, latencyMillis: 12.34, error: nil, outcome: "pending",
            nextAttemptAt: Date().addingTimeInterval(60), lastError: "HTTP 503")
        let listed = try await outbox.list(endpoint: nil, status: "pending", limit: 10)
        XCTAssertEqual(listed.map(\.id), ["msg_1"])
        XCTAssertEqual(listed.first?.approvalID, approval.uuidString.lowercased())
        XCTAssertEqual(listed.first?.lastStatus, 503)
        let log = try JSONSerialization.jsonObject(with: Data((listed.first?.attemptLog ?? "").utf8)) as? [[String: Any]]
        XCTAssertEqual(log?.count, 1)
        XCTAssertEqual(log?.first?["status_code"] as? Int, 503)
        XCTAssertEqual(log?.first?["latency_ms"] as? Double, 12.3)
        await client.shutdown()
    }
}
