import Foundation
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

    /// A reservation was not admitted: its window is full (another call got there first).
    struct NotAdmitted: Error {
        var key: CounterKey
    }

    static func stream(_ callID: UUID) -> String { "call-\(callID.uuidString.lowercased())" }

    /// The current counts of `keys` (a missing window counts 0).
    func counts(_ keys: [CounterKey]) async throws -> [CounterKey: Double] {
        guard !keys.isEmpty else { return [:] }
        return try await store.client.withConnection { connection in
            var counts: [CounterKey: Double] = [:]
            for key in keys {
                let result = try connection.query(
                    """
                    SELECT count::float8 FROM tollgate.rate_windows
                    WHERE server = $1 AND counter = $2 AND scope = $3 AND window_start = $4 AND window_seconds = $5
                    """,
                    [key.server, key.counter, key.scope, key.windowStart, key.windowSeconds])
                counts[key] = result.rowCount > 0 ? try result[0].decode(Double.self, 0) : 0
            }
            return counts
        }
    }

    /// Appends a decision that reserves nothing.
    func record(_ decided: ToolCallDecided) async throws {
        let event = NewEvent(type: ToolCallDecided.type, data: EventCoding.encode(decided))
        try await store.append(stream: Self.stream(decided.callID), expectedVersion: .noStream, events: [event], notify: false)
    }

    /// Makes every reservation and appends the decision, all or nothing.
    ///
    /// - Throws: `NotAdmitted` when a window has no room left (nothing was written).
    func record(_ decided: ToolCallDecided, reserving reservations: [CounterReservation]) async throws {
        let event = NewEvent(type: ToolCallDecided.type, data: EventCoding.encode(decided))
        let store = store
        try await store.client.withTransaction { connection in
            try Self.reserve(reservations, on: connection)
            try store.append(stream: Self.stream(decided.callID), expectedVersion: .noStream, events: [event], on: connection)
        }
        store.noteCommit(notify: false)
    }

    /// Makes every reservation on `connection`, inside the caller's transaction.
    ///
    /// - Throws: `NotAdmitted` when a window has no room left (the caller's transaction must roll back).
    static func reserve(_ reservations: [CounterReservation], on connection: PostgresConnection) throws {
        // One lock order for every transaction, so two calls sharing counters cannot deadlock.
        let ordered = reservations.sorted { $0.key.description < $1.key.description }
        for reservation in ordered {
            let key = reservation.key
            let result = try connection.query(
                """
                INSERT INTO tollgate.rate_windows AS w (server, counter, scope, window_start, window_seconds, count)
                SELECT $1, $2, $3, $4, $5, $6::numeric WHERE $6::numeric <= $7::numeric
                ON CONFLICT (server, counter, scope, window_start, window_seconds)
                DO UPDATE SET count = w.count + EXCLUDED.count WHERE w.count + EXCLUDED.count <= $7::numeric
                RETURNING count
                """,
                [
                    key.server, key.counter, key.scope, key.windowStart, key.windowSeconds, number(reservation.amount),
                    number(reservation.ceiling),
                ])
            guard result.rowCount == 1 else { throw NotAdmitted(key: key) }
        }
    }

    /// Appends how a call ended, giving back its reservations in the same transaction when it says so.
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
                try connection.query(
                    """
                    UPDATE tollgate.rate_windows SET count = count - $6::numeric
                    WHERE server = $1 AND counter = $2 AND scope = $3 AND window_start = $4 AND window_seconds = $5
                    """,
                    [
                        reservation.server, reservation.counter, reservation.scope, reservation.windowStart, reservation.windowSeconds,
                        Self.number(reservation.amount),
                    ])
            }
            try store.append(stream: stream, expectedVersion: .exactly(1), events: [event], on: connection)
        }
        store.noteCommit(notify: false)
    }

    /// How long a call's outcome may wait to share a commit with other appends.
    static let outcomeLinger = Duration.milliseconds(5)

    /// A number as PostgreSQL `numeric` text, exact for the integers and decimals that limits use.
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}
