import Foundation
import Logging
import Synchronization
import TollgateTestSupport
import XCTest

@testable import TollgatePostgres

final class EventStoreTests: XCTestCase {
    func makeStore(maxConnections: Int = 16) async throws -> (EventStore, PostgresConfiguration) {
        let configuration = try await TestCluster.freshDatabase()
        let client = PostgresClient(configuration: configuration, options: .init(maxConnections: maxConnections))
        return (EventStore(client: client), configuration)
    }

    func testAppendedEventsReadBackInOrder() async throws {
        let (store, _) = try await makeStore()
        let first = try await store.append(stream: "call-1", expectedVersion: .noStream, events: [event("A", #"{"n": 1}"#), event("B")])
        XCTAssertEqual(first.streamVersion, 2)
        let second = try await store.append(stream: "call-1", expectedVersion: .exactly(2), events: [event("C", #"{"s": "x\"y"}"#)])
        XCTAssertEqual(second.streamVersion, 3)
        XCTAssertGreaterThan(second.lastPosition, first.lastPosition)
        let events = try await store.read(stream: "call-1")
        XCTAssertEqual(events.map(\.type), ["A", "B", "C"])
        XCTAssertEqual(events.map(\.version), [1, 2, 3])
        XCTAssertEqual(String(decoding: events[0].data, as: UTF8.self), #"{"n": 1}"#)
        struct Payload: Decodable { var s: String }
        XCTAssertEqual(try events[2].decode(Payload.self).s, "x\"y")
        XCTAssertLessThan(abs(events[0].recordedAt.timeIntervalSinceNow), 60)
        let fromThree = try await store.read(stream: "call-1", fromVersion: 3)
        XCTAssertEqual(fromThree.map(\.type), ["C"])
        let missing = try await store.read(stream: "no-such-stream")
        XCTAssertEqual(missing, [])
    }

    func testALingeringAppendRidesWithTheNextCommitOrCommitsAloneWhenItsTimeIsUp() async throws {
        let (store, _) = try await makeStore()
        defer { store.stop() }
        // Alone: committed once its linger is over, not lost.
        let started = ContinuousClock.now
        try await store.append(stream: "outcome-0", expectedVersion: .noStream, events: [event("Done")], linger: .milliseconds(300))
        XCTAssertGreaterThanOrEqual(started.duration(to: .now), .milliseconds(300))

        // With company: an append that is in a hurry takes it along, in the same transaction, long before its linger ends.
        // The lingering append must be waiting in the queue, with no group commit running, before the other one comes
        // (on a busy machine the first group may still be finishing, or the child task may start late).
        try await waitUntil("no group commit runs") { store.queueState.activeGroups == 0 }
        let again = ContinuousClock.now
        async let lingering = store.append(stream: "outcome-1", expectedVersion: .noStream, events: [event("Done")], linger: .seconds(30))
        try await waitUntil("the lingering append is queued") { store.queueState.queued == 1 }
        try await store.append(stream: "decision-2", expectedVersion: .noStream, events: [event("Decided")])
        _ = try await lingering
        XCTAssertLessThan(again.duration(to: .now), .seconds(10))
        let transactions = try await store.client.query(
            "SELECT DISTINCT transaction_id::text FROM tollgate.events WHERE stream_id IN ('outcome-1', 'decision-2')")
        XCTAssertEqual(transactions.rowCount, 1, "one commit for both")
    }

    private struct NeverTrue: Error {
        var what: String
    }

    /// Waits for `condition`, at most 10 s (then the test fails with `what`).
    private func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw NeverTrue(what: what) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func testExpectedVersionMismatchIsATypedConflict() async throws {
        let (store, _) = try await makeStore()
        try await store.append(stream: "s", expectedVersion: .noStream, events: [event("A")])
        for expected in [ExpectedVersion.noStream, .exactly(0), .exactly(2), .exactly(7)] {
            do {
                try await store.append(stream: "s", expectedVersion: expected, events: [event("B")])
                XCTFail("\(expected) must conflict")
            } catch let error as EventStoreError {
                XCTAssertEqual(error, .wrongExpectedVersion(stream: "s", expected: expected, actual: 1))
            }
        }
        let appended = try await store.append(stream: "s", expectedVersion: .any, events: [event("C")])
        XCTAssertEqual(appended.streamVersion, 2)
        let events = try await store.read(stream: "s")
        XCTAssertEqual(events.count, 2)
    }

    func testConcurrentWritersAtTheSameVersionHaveExactlyOneWinner() async throws {
        let (store, _) = try await makeStore()
        try await store.append(stream: "race", expectedVersion: .noStream, events: [event("Start")])
        for round in 1...5 {
            let results = await withTaskGroup(of: Result<AppendResult, any Error>.self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        await attempt {
                            try await store.append(stream: "race", expectedVersion: .exactly(Int64(round)), events: [event("W\(writer)")])
                        }
                    }
                }
                var all: [Result<AppendResult, any Error>] = []
                for await result in group { all.append(result) }
                return all
            }
            let winners = results.filter { if case .success = $0 { return true } else { return false } }
            XCTAssertEqual(winners.count, 1, "round \(round)")
            for case .failure(let error) in results {
                guard case EventStoreError.wrongExpectedVersion(_, _, let actual) = error else { return XCTFail("unexpected \(error)") }
                XCTAssertEqual(actual, Int64(round + 1))
            }
        }
        let raced = try await store.read(stream: "race")
        XCTAssertEqual(raced.map(\.version), Array(1...6))
    }

    func testOneBadAppendInAGroupFailsAloneAndTheRestCommit() async throws {
        let (store, _) = try await makeStore()
        let results = await withTaskGroup(of: (Int, Result<AppendResult, any Error>).self) { group in
            for index in 0..<24 {
                group.addTask {
                    let json = index == 7 ? "{not json" : #"{"i": \#(index)}"#
                    return (
                        index, await attempt { try await store.append(stream: "g-\(index)", expectedVersion: .noStream, events: [event("E", json)]) }
                    )
                }
            }
            var all: [Int: Result<AppendResult, any Error>] = [:]
            for await (index, result) in group { all[index] = result }
            return all
        }
        for (index, result) in results {
            switch result {
            case .success: XCTAssertNotEqual(index, 7)
            case .failure(let error):
                XCTAssertEqual(index, 7, "\(error)")
                guard case EventStoreError.invalidAppend(let stream, let reason) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(stream, "g-7")
                XCTAssertTrue(reason.contains("22P02") || reason.contains("json"), reason)
            }
        }
        let count = try await store.client.query("SELECT count(*) FROM tollgate.events")[0].decode(Int.self, 0)
        XCTAssertEqual(count, 23)
    }

    func testMalformedAppendsAreRefusedBeforeTheDatabase() async throws {
        let (store, _) = try await makeStore()
        let cases: [(String, [NewEvent])] = [
            ("", [event("A")]),
            (String(repeating: "s", count: 201), [event("A")]),
            ("ok", []),
            ("ok", [event("")]),
            ("ok", [NewEvent(type: "A", data: Array("\"a\u{0}b\"".utf8))]),
            ("ok", [NewEvent(type: "A", data: [UInt8](repeating: 32, count: (1 << 20) + 1))]),
            ("ok", Array(repeating: event("A"), count: 1001)),
        ]
        for (stream, events) in cases {
            do {
                try await store.append(stream: stream, expectedVersion: .any, events: events)
                XCTFail("append to \(stream.prefix(10)) with \(events.count) events must be refused")
            } catch let error as EventStoreError {
                guard case .invalidAppend = error else { return XCTFail("\(error)") }
            }
        }
        let count = try await store.client.query("SELECT count(*) FROM tollgate.events")[0].decode(Int.self, 0)
        XCTAssertEqual(count, 0)
    }

    func testTheDatabaseRefusesToChangeOrRemoveEvents() async throws {
        let (store, configuration) = try await makeStore()
        try await store.append(stream: "s", expectedVersion: .noStream, events: [event("A", #"{"amount": 5}"#)])
        // The store's role (the runtime role) holds no privilege for it; the owner, who does, is stopped by the triggers.
        let owner = PostgresClient(configuration: try TestCluster.owner(of: configuration))
        defer { Task { await owner.shutdown() } }
        for statement in [
            "UPDATE tollgate.events SET data = '{\"amount\": 5000}'",
            "DELETE FROM tollgate.events",
            "TRUNCATE tollgate.events",
        ] {
            for (client, expected) in [(store.client, "42501"), (owner, "TG001")] {
                do {
                    try await client.query(statement)
                    XCTFail("\(statement) must be refused")
                } catch let error as PostgresError {
                    XCTAssertEqual(error.sqlState, expected, "\(statement): \(error)")
                    if expected == "TG001" { XCTAssertTrue("\(error)".contains("append-only")) }
                }
            }
        }
        let events = try await store.read(stream: "s")
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(String(decoding: events[0].data, as: UTF8.self), #"{"amount": 5}"#)
    }

    /// The gap problem: transaction A takes a position and stays open; B takes a higher one and commits. A
    /// reader must not move past A's position, and must see A's event once A commits.
    func testAnEventCommittedLateIsNeverSkipped() async throws {
        let (store, configuration) = try await makeStore()
        try await store.append(stream: "before", expectedVersion: .noStream, events: [event("Before")])

        let slow = try PostgresConnection.connect(configuration)
        defer { slow.close() }
        try slow.execute("BEGIN")
        _ = try EventStore.append([AppendRequest(stream: "slow", expected: .noStream, events: [event("Slow")])], on: slow)

        try await store.append(stream: "fast", expectedVersion: .noStream, events: [event("Fast")])
        let positions = try await store.client.query("SELECT stream_id, position FROM tollgate.events ORDER BY position")
        XCTAssertEqual(positions.rowCount, 2, "the slow event is not visible yet")

        // While A is open, the reader stops before it: it sees only what committed before A began.
        let early = try await store.readAll(after: .start)
        XCTAssertEqual(early.map(\.streamID), ["before"])

        try slow.execute("COMMIT")
        let all = try await store.readAll(after: early.last!.logPosition)
        XCTAssertEqual(all.map(\.streamID), ["slow", "fast"])
        let slowPosition = all[0].position
        let fastPosition = all[1].position
        XCTAssertLessThan(slowPosition, fastPosition, "the slow event took the lower position but committed last")
        let nothingMore = try await store.readAll(after: all.last!.logPosition)
        XCTAssertEqual(nothingMore, [])
    }

    func testConcurrentWritersWithLateCommitsAreFollowedExactlyOnceInOrder() async throws {
        let (store, configuration) = try await makeStore()
        let writers = 8
        let appendsPerWriter = 60
        let delivered = Mutex<[RecordedEvent]>([])
        let follower = Task {
            for try await event in store.subscribe(after: .start, batchSize: 50, pollInterval: .milliseconds(50)) {
                delivered.withLock { $0.append(event) }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for index in 0..<appendsPerWriter {
                        try await store.append(
                            stream: "w\(writer)", expectedVersion: .exactly(Int64(index)), events: [event("E", #"{"i": \#(index)}"#)])
                    }
                }
            }
            // Slow transactions that take early positions and commit late, interleaved with the writers.
            group.addTask {
                let slow = try PostgresConnection.connect(configuration)
                defer { slow.close() }
                for index in 0..<20 {
                    try slow.execute("BEGIN")
                    _ = try EventStore.append([AppendRequest(stream: "slow-\(index)", expected: .noStream, events: [event("Slow")])], on: slow)
                    _ = try slow.query("SELECT pg_sleep(0.02)")
                    try slow.execute("COMMIT")
                }
            }
            try await group.waitForAll()
        }
        // Every writer has committed: the follower must deliver exactly what the table holds, in (xid, position) order.
        let stored = try await store.client.query(
            "SELECT transaction_id::text AS xid, position FROM tollgate.events ORDER BY transaction_id, position"
        ).rows.map { LogPosition(transactionID: try $0.decode(UInt64.self, 0), position: try $0.decode(Int64.self, 1)) }
        let deadline = ContinuousClock.now + .seconds(20)
        while delivered.withLock({ $0.count }) < stored.count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))  // anything delivered twice would arrive now
        follower.cancel()
        let seen = delivered.withLock { $0 }
        XCTAssertEqual(seen.map(\.logPosition), stored, "every committed event delivered once, in global order")
        XCTAssertEqual(stored.count, writers * appendsPerWriter + 20)
        for writer in 0..<writers {
            let versions = seen.filter { $0.streamID == "w\(writer)" }.map(\.version)
            XCTAssertEqual(versions, Array(1...Int64(appendsPerWriter)), "stream w\(writer) in version order")
        }
    }

    func testAppendingBehindANewerWriterIsRefusedSoStreamsStayInOrder() async throws {
        let (store, configuration) = try await makeStore()
        let old = try PostgresConnection.connect(configuration)
        defer { old.close() }
        try old.execute("BEGIN")
        _ = try old.query("SELECT pg_current_xact_id()")  // this transaction's id is now older than the next writer's
        try await store.append(stream: "s", expectedVersion: .noStream, events: [event("First")])
        do {
            _ = try EventStore.append([AppendRequest(stream: "s", expected: .any, events: [event("Second")])], on: old)
            XCTFail("an older transaction must not append after a newer one")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "40001")
        }
        try? old.execute("ROLLBACK")
        let retried = try await store.append(stream: "s", expectedVersion: .any, events: [event("Second")])
        XCTAssertEqual(retried.streamVersion, 2)
    }

    /// A group whose streams are distinct and all have an expected version is appended with one INSERT (migration
    /// 0008): every item still gets its own outcome, in order, and the events land in item order.
    func testAGroupOfDistinctStreamsGetsEachItsOwnOutcome() async throws {
        let (store, configuration) = try await makeStore()
        try await store.append(stream: "b", expectedVersion: .noStream, events: [event("B1")])
        try await store.append(stream: "c", expectedVersion: .noStream, events: [event("C1"), event("C2")])
        try await store.append(stream: "e", expectedVersion: .noStream, events: [event("E1")])
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        let outcomes = try EventStore.append(
            [
                AppendRequest(stream: "a", expected: .noStream, events: [event("A1", #"{"n": 1}"#)]),
                AppendRequest(stream: "b", expected: .exactly(1), events: [event("B2"), event("B3", #"{"n": 3}"#)]),
                AppendRequest(stream: "c", expected: .exactly(1), events: [event("Late")]),
                AppendRequest(stream: "d", expected: .exactly(1), events: [event("Orphan")]),
                AppendRequest(stream: "e", expected: .noStream, events: [event("Again")]),
                AppendRequest(stream: "f", expected: .noStream, events: [event("F1"), event("F2")]),
            ], on: connection)
        var appended: [String: AppendResult] = [:]
        var conflicts: [String: Int64] = [:]
        for (stream, outcome) in zip(["a", "b", "c", "d", "e", "f"], outcomes) {
            switch outcome {
            case .appended(let result): appended[stream] = result
            case .conflict(let actual): conflicts[stream] = actual
            }
        }
        XCTAssertEqual(appended.mapValues(\.streamVersion), ["a": 1, "b": 3, "f": 2])
        XCTAssertEqual(conflicts, ["c": 2, "d": 0, "e": 1])
        XCTAssertLessThan(appended["a"]!.lastPosition, appended["b"]!.lastPosition)
        XCTAssertLessThan(appended["b"]!.lastPosition, appended["f"]!.lastPosition)
        let b = try await store.read(stream: "b")
        XCTAssertEqual(b.map(\.type), ["B1", "B2", "B3"])
        XCTAssertEqual(b.last?.position, appended["b"]!.lastPosition)
        XCTAssertEqual(String(decoding: b[2].data, as: UTF8.self), #"{"n": 3}"#)
        let cEvents = try await store.read(stream: "c")
        XCTAssertEqual(cEvents.map(\.type), ["C1", "C2"])
        let dEvents = try await store.read(stream: "d")
        XCTAssertEqual(dEvents, [])
        let eEvents = try await store.read(stream: "e")
        XCTAssertEqual(eEvents.map(\.type), ["E1"])
        let fEvents = try await store.read(stream: "f")
        XCTAssertEqual(fEvents.map(\.type), ["F1", "F2"])
    }

    /// A group of single events to distinct streams at known versions (the gateway's decisions and outcomes) goes through
    /// `append_singles` (migration 0009), with `append_events`'s outcomes: each item appended or refused with its
    /// stream's actual version, in order, and the refused ones leave nothing behind.
    func testAGroupOfSingleEventsGetsEachItsOwnOutcome() async throws {
        let (store, configuration) = try await makeStore()
        try await store.append(stream: "b", expectedVersion: .noStream, events: [event("B1")])
        try await store.append(stream: "c", expectedVersion: .noStream, events: [event("C1"), event("C2")])
        try await store.append(stream: "e", expectedVersion: .noStream, events: [event("E1")])
        let requests = [
            AppendRequest(stream: "a", expected: .noStream, events: [event("A1", #"{"n": 1}"#)]),
            AppendRequest(stream: "b", expected: .exactly(1), events: [event("B2", #"{"n": 2}"#)]),
            AppendRequest(stream: "c", expected: .exactly(1), events: [event("Late")]),
            AppendRequest(stream: "d", expected: .exactly(1), events: [event("Orphan")]),
            AppendRequest(stream: "e", expected: .noStream, events: [event("Again")]),
            AppendRequest(
                stream: "f", expected: .noStream, events: [NewEvent(type: "F1", data: Array("{}".utf8), metadata: Array(#"{"m": true}"#.utf8))]),
        ]
        XCTAssertTrue(EventStore.canAppendAsSingles(requests))
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        let outcomes = try EventStore.appendSingles(requests, on: connection)
        let described = outcomes.map { outcome -> String in
            switch outcome {
            case .appended(let result): return "appended \(result.streamVersion)"
            case .conflict(let actual): return "conflict \(actual)"
            }
        }
        XCTAssertEqual(described, ["appended 1", "appended 2", "conflict 2", "conflict 0", "conflict 1", "appended 1"])
        let positions = outcomes.compactMap { outcome -> Int64? in if case .appended(let result) = outcome { result.lastPosition } else { nil } }
        XCTAssertEqual(positions, positions.sorted(), "the events land in item order")
        let b = try await store.read(stream: "b")
        XCTAssertEqual(b.map(\.type), ["B1", "B2"])
        XCTAssertEqual(String(decoding: b[1].data, as: UTF8.self), #"{"n": 2}"#)
        guard case .appended(let bResult) = outcomes[1] else { return XCTFail("b") }
        XCTAssertEqual(b[1].position, bResult.lastPosition)
        let f = try await store.read(stream: "f")
        XCTAssertEqual(String(decoding: f[0].metadata, as: UTF8.self), #"{"m": true}"#)
        let refused = try await store.client.query(
            "SELECT count(*) FROM tollgate.events WHERE type IN ('Late', 'Orphan', 'Again')")[0].decode(Int.self, 0)
        XCTAssertEqual(refused, 0)

        // Through the store's group commit, the same shape takes the same path and gives the same typed conflicts.
        do {
            try await store.append(stream: "c", expectedVersion: .exactly(1), events: [event("Late")])
            XCTFail("stream c is at version 2")
        } catch let error as EventStoreError {
            XCTAssertEqual(error, .wrongExpectedVersion(stream: "c", expected: .exactly(1), actual: 2))
        }
    }

    /// Only single events to distinct streams at known versions take that path; every other group keeps `append_events`.
    func testOnlySingleEventsToDistinctStreamsAtKnownVersionsTakeTheShortPath() {
        let one = AppendRequest(stream: "a", expected: .noStream, events: [event("A")])
        XCTAssertTrue(EventStore.canAppendAsSingles([one]))
        XCTAssertTrue(EventStore.canAppendAsSingles([one, AppendRequest(stream: "b", expected: .exactly(3), events: [event("B")])]))
        XCTAssertFalse(EventStore.canAppendAsSingles([one, AppendRequest(stream: "a", expected: .exactly(1), events: [event("A2")])]))
        XCTAssertFalse(EventStore.canAppendAsSingles([AppendRequest(stream: "a", expected: .any, events: [event("A")])]))
        XCTAssertFalse(EventStore.canAppendAsSingles([AppendRequest(stream: "a", expected: .noStream, events: [event("A"), event("B")])]))
    }

    /// `append_singles` skips the check of the previous version's writer because its transaction is the statement alone;
    /// inside a longer transaction (whose id may be older than that writer's) it refuses to run, and writes nothing.
    func testTheShortPathRefusesToRunInsideALongerTransaction() async throws {
        let (store, configuration) = try await makeStore()
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        try connection.execute("BEGIN")
        _ = try connection.query("SELECT pg_current_xact_id()")
        do {
            _ = try EventStore.appendSingles([AppendRequest(stream: "s", expected: .noStream, events: [event("A")])], on: connection)
            XCTFail("append_singles must refuse a transaction that already has an id")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "25000")
        }
        try connection.execute("ROLLBACK")
        // Called by hand with a stream named twice, it refuses too, rather than answer for one item twice.
        do {
            _ = try connection.query(
                "SELECT * FROM tollgate.append_singles('{s,s}'::text[], '{0,1}'::bigint[], '{A,B}'::text[], '{\"{}\",\"{}\"}'::jsonb[], '{\"{}\",\"{}\"}'::jsonb[])"
            )
            XCTFail("append_singles must refuse a stream named twice")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "22023")
        }
        let count = try await store.client.query("SELECT count(*) FROM tollgate.events")[0].decode(Int.self, 0)
        XCTAssertEqual(count, 0)
    }

    /// A writer that holds the next version uncommitted makes the short path wait for it, as the unique index would;
    /// once that writer commits, the item is refused with the version it wrote.
    func testTheShortPathWaitsForAConcurrentWriterOfTheSameVersion() async throws {
        let (store, configuration) = try await makeStore()
        try await store.append(stream: "s", expectedVersion: .noStream, events: [event("First")])
        let other = try PostgresConnection.connect(configuration)
        defer { other.close() }
        try other.execute("BEGIN")
        _ = try EventStore.append([AppendRequest(stream: "s", expected: .exactly(1), events: [event("Theirs")])], on: other)
        let waiting = Task.detached {
            let connection = try PostgresConnection.connect(configuration)
            defer { connection.close() }
            return try EventStore.appendSingles([AppendRequest(stream: "s", expected: .exactly(1), events: [event("Mine")])], on: connection)
        }
        // The append must be waiting on the other transaction's row before that commits.
        let deadline = ContinuousClock.now + .seconds(10)
        while try await store.client.query(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%append_singles%'")[0].decode(Int.self, 0) == 0
        {
            guard ContinuousClock.now < deadline else { return XCTFail("the append never waited for the other writer") }
            try await Task.sleep(for: .milliseconds(10))
        }
        try other.execute("COMMIT")
        let outcomes = try await waiting.value
        guard case .conflict(let actual) = outcomes[0] else { return XCTFail("\(outcomes)") }
        XCTAssertEqual(actual, 2)
        let events = try await store.read(stream: "s")
        XCTAssertEqual(events.map(\.type), ["First", "Theirs"])
    }

    /// Groups that name a stream twice, or append at any version, take the streams one at a time: the second append
    /// to a stream sees the first.
    func testAGroupNamingAStreamTwiceAppendsInOrder() async throws {
        let (store, configuration) = try await makeStore()
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        let outcomes = try EventStore.append(
            [
                AppendRequest(stream: "s", expected: .noStream, events: [event("One")]),
                AppendRequest(stream: "s", expected: .exactly(1), events: [event("Two")]),
                AppendRequest(stream: "s", expected: .any, events: [event("Three")]),
                AppendRequest(stream: "s", expected: .noStream, events: [event("Never")]),
            ], on: connection)
        let versions = outcomes.map { outcome -> String in
            switch outcome {
            case .appended(let result): return "appended \(result.streamVersion)"
            case .conflict(let actual): return "conflict \(actual)"
            }
        }
        XCTAssertEqual(versions, ["appended 1", "appended 2", "appended 3", "conflict 3"])
        let events = try await store.read(stream: "s")
        XCTAssertEqual(events.map(\.type), ["One", "Two", "Three"])
    }

    /// The one-INSERT path keeps the order check too: a group that would append after a newer transaction's event
    /// is refused as a whole with a serialization failure, and nothing of it is written.
    func testAGroupAppendingBehindANewerWriterIsRefusedWhole() async throws {
        let (store, configuration) = try await makeStore()
        let old = try PostgresConnection.connect(configuration)
        defer { old.close() }
        try old.execute("BEGIN")
        _ = try old.query("SELECT pg_current_xact_id()")
        try await store.append(stream: "s", expectedVersion: .noStream, events: [event("First")])
        do {
            _ = try EventStore.append(
                [
                    AppendRequest(stream: "new", expected: .noStream, events: [event("New")]),
                    AppendRequest(stream: "s", expected: .exactly(1), events: [event("Second")]),
                ], on: old)
            XCTFail("an older transaction must not append after a newer one")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "40001")
        }
        try? old.execute("ROLLBACK")
        let newEvents = try await store.read(stream: "new")
        XCTAssertEqual(newEvents, [])
        let sEvents = try await store.read(stream: "s")
        XCTAssertEqual(sEvents.map(\.type), ["First"])
    }

    func testAFollowerInAnotherProcessWakesOnNotification() async throws {
        let (writer, configuration) = try await makeStore()
        // A second store with its own pool and listener stands in for another gateway process.
        let reader = EventStore(client: PostgresClient(configuration: configuration))
        defer { reader.stop() }
        var iterator = reader.subscribe(after: .start, pollInterval: .seconds(30)).makeAsyncIterator()
        // Let the listener connect before appending (the first read also happens here).
        let signal = reader.changes
        let deadline = ContinuousClock.now + .seconds(5)
        while signal.generation == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let started = ContinuousClock.now
        Task {
            try await Task.sleep(for: .milliseconds(50))
            try await writer.append(stream: "x", expectedVersion: .noStream, events: [event("Hello")])
        }
        let woken = try await iterator.next()
        XCTAssertEqual(woken?.type, "Hello")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5), "woken by NOTIFY, not the 30 s poll")
    }

    func testALostNotificationCostsOnlyLatency() async throws {
        let (store, configuration) = try await makeStore()
        var iterator = store.subscribe(after: .start, pollInterval: .milliseconds(100)).makeAsyncIterator()
        // Written behind the store's back: no local signal and no NOTIFY.
        let raw = try PostgresConnection.connect(configuration)
        _ = try EventStore.append([AppendRequest(stream: "quiet", expected: .noStream, events: [event("Quiet")])], on: raw)
        raw.close()
        let polled = try await iterator.next()
        XCTAssertEqual(polled?.streamID, "quiet")
    }
}

private func event(_ type: String, _ json: String = "{}") -> NewEvent { NewEvent(type: type, data: Array(json.utf8)) }
