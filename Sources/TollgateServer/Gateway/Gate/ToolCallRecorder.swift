import Foundation
import Synchronization
import TollgateCore
import TollgatePostgres

/// Writes the gateway's decisions and outcomes to the log, with their counter reservations, in PostgreSQL.
///
/// A decision without reservations goes through the event store's group commit (many concurrent calls share one
/// commit). A decision with reservations is one transaction of its own: each reservation is admitted with one
/// statement that is exact under concurrency and across gateway processes, and the event is appended in the same
/// transaction, so the rate windows never count a call the log does not hold, or the reverse.
///
/// Call events are appended without `NOTIFY` (it takes a global lock at every commit, and nobody waits on these
/// events): projectors in this process wake at once, those in other processes on their next poll.
struct ToolCallRecorder: Sendable {
    let store: EventStore
    /// Decisions with reservations waiting to share a transaction (see `record(_:reserving:)`).
    private let reserving: GroupCommitQueue<Reserved, CounterKey?>
    /// Windows a reservation found full lately: the gate reads their counts before deciding instead of guessing.
    let fullWindows = FullWindows()

    init(store: EventStore) {
        self.store = store
        self.reserving = GroupCommitQueue(maxGroupSize: 32, maxConcurrentGroups: 1) { group in
            await Self.commit(group, store: store)
        }
    }

    /// A decision and the reservations it needs.
    struct Reserved: Sendable {
        var event: NewEvent
        var stream: String
        var reservations: [CounterReservation]
    }

    /// A reservation was not admitted: its window is full (another call got there first).
    struct NotAdmitted: Error {
        var key: CounterKey
    }

    static func stream(_ callID: UUID) -> String { "call-\(callID.lowercasedString)" }

    /// The current counts of `keys` (a missing window counts 0).
    func counts(_ keys: [CounterKey]) async throws -> [CounterKey: Double] {
        guard !keys.isEmpty else { return [:] }
        return try await store.client.withConnection { connection in
            var counts: [CounterKey: Double] = [:]
            for key in keys { counts[key] = try RateWindowStore.count(key, on: connection) }
            return counts
        }
    }

    /// Appends a decision that reserves nothing.
    func record(_ decided: ToolCallDecided) async throws {
        let event = NewEvent(type: ToolCallDecided.type, data: EventCoding.encode(decided))
        try await store.append(stream: Self.stream(decided.callID), expectedVersion: .noStream, events: [event], notify: false)
    }

    /// Appends the count of an agent's refusals past its budget for one minute.
    func record(_ summary: RefusalsSummarized) async throws {
        let event = NewEvent(type: RefusalsSummarized.type, data: try EventCoding.encode(summary))
        try await store.append(stream: RefusalsSummarized.stream(summary.summaryID), expectedVersion: .noStream, events: [event], notify: false)
    }

    /// Makes every reservation and appends the decision, all or nothing.
    ///
    /// Concurrent decisions share a transaction (group commit), as decisions without reservations do in the event store:
    /// a counter row stays locked from its reservation to the commit, so one transaction per call would let a busy
    /// counter admit one call per commit.
    ///
    /// - Throws: `NotAdmitted` when a window has no room left (nothing was written).
    func record(_ decided: ToolCallDecided, reserving reservations: [CounterReservation]) async throws {
        let event = NewEvent(type: ToolCallDecided.type, data: EventCoding.encode(decided))
        let request = Reserved(event: event, stream: Self.stream(decided.callID), reservations: reservations)
        if let full = try await reserving.submit(request) { throw NotAdmitted(key: full) }
    }

    /// Commits a group of decisions with reservations in one transaction (one statement), and gives for each the window
    /// that had no room for it (`nil`: admitted).
    ///
    /// Every reservation of the group is made in one order (by counter), the order every transaction that touches
    /// counters takes, so concurrent groups (in this process or another) cannot deadlock. A decision whose reservation
    /// finds no room is not admitted: its reservations made before are taken back in the same transaction (the rows
    /// are still locked, so no other transaction saw them), and its event is not appended. Another decision of the
    /// group may have been refused meanwhile because of those: it decides again on fresh counts, as after any refusal,
    /// so a window is never over-admitted and never stays short.
    ///
    /// When the group transaction fails, each decision is tried alone in a transaction of its own.
    static func commit(_ group: [Reserved], store: EventStore) async -> [Result<CounterKey?, any Error>] {
        do {
            let refused = try await store.client.withConnection { connection in
                try Self.reserveAndAppend(group, store: store, on: connection)
            }
            if refused.contains(where: { $0 == nil }) { store.noteCommit(notify: false) }
            return refused.map { .success($0) }
        } catch  where group.count > 1 {
            var results: [Result<CounterKey?, any Error>] = []
            for request in group { results += await commit([request], store: store) }
            return results
        } catch {
            return [.failure(error)]
        }
    }

    /// The group's reservations and the admitted decisions' events, with one statement on `connection` (its own
    /// transaction, or the caller's): `tollgate.reserve_and_append` (migration 0010). For each decision, the window that
    /// had no room for it (`nil`: admitted).
    static func reserveAndAppend(_ group: [Reserved], store: EventStore, on connection: PostgresConnection) throws -> [CounterKey?] {
        for request in group { try store.validate(stream: request.stream, events: [request.event]) }
        // One lock order for every transaction, so two groups sharing counters cannot deadlock.
        let all = group.enumerated()
            .flatMap { item, request in request.reservations.map { (decision: item, reservation: $0) } }
            .sorted { $0.reservation.key.description < $1.reservation.key.description }
        let refused = try RateWindowStore.reserveAndAppend(all, decisions: group.map { ($0.stream, $0.event) }, on: connection)
        return refused.map { by in by.map { all[$0].reservation.key } }
    }

    /// Makes every reservation on `connection`, inside the caller's transaction.
    ///
    /// - Throws: `NotAdmitted` when a window has no room left (the caller's transaction must roll back).
    static func reserve(_ reservations: [CounterReservation], on connection: PostgresConnection) throws {
        // One lock order for every transaction, so two calls sharing counters cannot deadlock.
        let ordered = reservations.sorted { $0.key.description < $1.key.description }
        for reservation in ordered {
            guard try RateWindowStore.reserve(reservation.key, amount: reservation.amount, ceiling: reservation.ceiling, on: connection) else {
                throw NotAdmitted(key: reservation.key)
            }
        }
    }

    /// Appends how a call ended, giving back its reservations in the same transaction when it says so.
    ///
    /// Idempotent: the outcome is version 2 of the call's stream, so writing it again (a retry after an answer lost
    /// with the connection) throws `EventStoreError.wrongExpectedVersion` with the stream at version 2, and its release
    /// rolls back with it: nothing is appended or given back twice.
    func record(_ completed: ToolCallCompleted) async throws {
        let event = NewEvent(type: ToolCallCompleted.type, data: EventCoding.encode(completed))
        let stream = Self.stream(completed.callID)
        guard !completed.released.isEmpty else {
            // Nobody waits on it (the agent has its answer): it rides with the next decision's commit.
            try await store.append(stream: stream, expectedVersion: .exactly(1), events: [event], notify: false, linger: Self.outcomeLinger)
            return
        }
        let store = store
        let released = completed.released.sorted { $0.key.description < $1.key.description }
        try await store.client.withTransaction { connection in
            for reservation in released {
                let key = CounterKey(
                    server: reservation.server, counter: reservation.counter, scope: reservation.scope, windowStart: reservation.windowStart,
                    windowSeconds: reservation.windowSeconds)
                try RateWindowStore.release(key, amount: reservation.amount, on: connection)
            }
            try store.append(stream: stream, expectedVersion: .exactly(1), events: [event], on: connection)
        }
        store.noteCommit(notify: false)
    }

    /// How long a call's outcome may wait to share a commit with other appends.
    static let outcomeLinger = Duration.milliseconds(5)
}

/// The rate windows' store names its windows and reservations with TollgateCore's types.
extension CounterKey: RateWindowKey {}
extension CounterReservation: RateWindowReservation {}

/// Rate windows a reservation found full. A window's key names its start, so an entry stops matching when the next
/// window begins; the set is emptied when it grows past a bound.
final class FullWindows: Sendable {
    private let keys = Mutex<Set<CounterKey>>([])
    static let maxKeys = 4096

    func insert(_ key: CounterKey) {
        keys.withLock { keys in
            if keys.count >= Self.maxKeys { keys.removeAll(keepingCapacity: true) }
            keys.insert(key)
        }
    }

    func containsAny(_ candidates: [CounterKey]) -> Bool {
        keys.withLock { keys in !keys.isEmpty && candidates.contains(where: keys.contains) }
    }
}
