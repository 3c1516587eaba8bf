import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

@testable import TollgateServer

/// Decisions with reservations committed as a group (one transaction): each is admitted only if all its reservations
/// fit, a refused one leaves nothing behind, and the windows count exactly the admitted decisions.
final class ReservationGroupTests: XCTestCase {
    func reservation(_ counter: String, ceiling: Double) -> CounterReservation {
        CounterReservation(
            key: CounterKey(server: "srv", counter: counter, scope: "agent:a", windowStart: 1_800_000_000, windowSeconds: 60), amount: 1,
            ceiling: ceiling, max: ceiling, algorithm: .fixed, rule: "limits[0]")
    }

    func decision(_ name: String, _ reservations: [CounterReservation]) -> ToolCallRecorder.Reserved {
        ToolCallRecorder.Reserved(
            event: NewEvent(type: ToolCallDecided.type, data: Array(#"{"n":"\#(name)"}"#.utf8)), stream: "call-\(name)", reservations: reservations)
    }

    func testAGroupAdmitsOnlyDecisionsWhoseEveryReservationFits() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        defer { store.stop() }
        let first = reservation("a-first", ceiling: 2)
        let second = reservation("b-second", ceiling: 1)
        // Windows are taken in counter order: a-first admits A and B and refuses C; b-second admits A and refuses B,
        // whose a-first reservation is then taken back.
        let group = [decision("a", [first, second]), decision("b", [first, second]), decision("c", [first])]
        let refused = try await store.client.withTransaction { connection in
            try ToolCallRecorder.reserveAndAppend(group, store: store, on: connection)
        }
        XCTAssertEqual(refused, [nil, second.key, first.key])
        let counts = try await store.client.query("SELECT counter, count::float8 FROM tollgate.rate_windows ORDER BY counter").rows.map {
            "\(try $0.decode(String.self, 0))=\(try $0.decode(Double.self, 1))"
        }
        XCTAssertEqual(counts, ["a-first=1.0", "b-second=1.0"], "B's reservation of a-first was taken back")
        let a = try await store.read(stream: "call-a")
        let b = try await store.read(stream: "call-b")
        let c = try await store.read(stream: "call-c")
        XCTAssertEqual(a.count, 1)
        XCTAssertEqual(b, [])
        XCTAssertEqual(c, [])

        // C was refused only because B held a place for a moment: deciding again, it fits.
        let retry = [decision("c", [first])]
        let again = try await store.client.withTransaction { connection in
            try ToolCallRecorder.reserveAndAppend(retry, store: store, on: connection)
        }
        XCTAssertEqual(again, [nil])
        let total = try await store.client.query("SELECT count::float8 FROM tollgate.rate_windows WHERE counter = 'a-first'")[0].decode(
            Double.self, 0)
        XCTAssertEqual(total, 2)
    }

    /// Through the recorder's group commit: many concurrent decisions on one counter admit exactly its ceiling.
    func testConcurrentDecisionsOnOneCounterAdmitExactlyTheCeiling() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        defer { store.stop() }
        let recorder = ToolCallRecorder(store: store)
        let limit = reservation("shared", ceiling: 25)
        let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<60 {
                group.addTask {
                    let decided = ToolCallDecided(
                        callID: UUID.random(), agent: "a", grant: "g", session: "s", server: "srv", tool: "t", requestID: "1", arguments: nil,
                        argumentsHash: "h", argumentsStorage: "hash", decision: "allow", reason: nil, retryAfter: nil, rule: "default",
                        policyHash: "p", category: nil, reservations: [], decisionMicros: 1, decidedAt: Date())
                    do {
                        try await recorder.record(decided, reserving: [limit])
                        return true
                    } catch is ToolCallRecorder.NotAdmitted {
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        XCTAssertEqual(admitted, 25)
        let count = try await store.client.query("SELECT count::float8 FROM tollgate.rate_windows")[0].decode(Double.self, 0)
        XCTAssertEqual(count, 25)
        let decisions = try await store.client.query("SELECT count(*) FROM tollgate.events WHERE type = 'ToolCallDecided'")[0].decode(
            Int64.self, 0)
        XCTAssertEqual(decisions, 25)
    }

    /// The group is one statement: a decision whose stream already exists fails all of it, so no reservation outlives the
    /// events it was made for; through the recorder's group commit, that decision then fails alone and the others are
    /// admitted. A decision too large for the log is refused before the database.
    func testADecisionThatCannotBeAppendedLeavesNoReservationBehind() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        defer { store.stop() }
        try await store.append(stream: "call-taken", expectedVersion: .noStream, events: [NewEvent(type: "Earlier", data: Array("{}".utf8))])
        let limit = reservation("shared", ceiling: 10)
        let group = [decision("fresh", [limit]), decision("taken", [limit])]
        do {
            _ = try await store.client.withConnection { connection in try ToolCallRecorder.reserveAndAppend(group, store: store, on: connection) }
            XCTFail("a decision whose stream exists must fail the group")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "23505")
        }
        let windows = try await store.client.query("SELECT count(*) FROM tollgate.rate_windows")[0].decode(Int.self, 0)
        XCTAssertEqual(windows, 0, "the group's reservations rolled back with it")
        let fresh = try await store.read(stream: "call-fresh")
        XCTAssertEqual(fresh, [])

        let results = await ToolCallRecorder.commit(group, store: store)
        guard results.count == 2, case .success(nil) = results[0], case .failure = results[1] else { return XCTFail("\(results)") }
        let count = try await store.client.query("SELECT count::float8 FROM tollgate.rate_windows")[0].decode(Double.self, 0)
        XCTAssertEqual(count, 1, "only the admitted decision counts")
        let admitted = try await store.read(stream: "call-fresh")
        XCTAssertEqual(admitted.map(\.type), [ToolCallDecided.type])

        let huge = ToolCallRecorder.Reserved(
            event: NewEvent(type: ToolCallDecided.type, data: Array(("{\"a\":\"" + String(repeating: "x", count: 1 << 20) + "\"}").utf8)),
            stream: "call-huge", reservations: [limit])
        do {
            _ = try await store.client.withConnection { connection in try ToolCallRecorder.reserveAndAppend([huge], store: store, on: connection) }
            XCTFail("an event over the store's size limit must be refused")
        } catch let error as EventStoreError {
            guard case .invalidAppend(let stream, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(stream, "call-huge")
        }
        let after = try await store.client.query("SELECT count::float8 FROM tollgate.rate_windows")[0].decode(Double.self, 0)
        XCTAssertEqual(after, 1)
    }

    /// The gate's memory of full windows: a key is found among others, and the set never grows past its bound.
    func testFullWindowsAreRememberedWithinABound() {
        let windows = FullWindows()
        let full = reservation("full", ceiling: 1).key
        let other = reservation("other", ceiling: 1).key
        XCTAssertFalse(windows.containsAny([full, other]))
        windows.insert(full)
        XCTAssertTrue(windows.containsAny([other, full]))
        XCTAssertFalse(windows.containsAny([other]))
        for index in 0..<FullWindows.maxKeys {
            windows.insert(CounterKey(server: "srv", counter: "c\(index)", scope: "agent:a", windowStart: 0, windowSeconds: 60))
        }
        XCTAssertFalse(windows.containsAny([full]), "emptied when it reached its bound")
        XCTAssertTrue(
            windows.containsAny([
                CounterKey(server: "srv", counter: "c\(FullWindows.maxKeys - 1)", scope: "agent:a", windowStart: 0, windowSeconds: 60)
            ]))
    }
}
