/// The rate windows in `tollgate.rate_windows` (migrations 0003, 0010 and 0011): how much of each counter each window
/// holds, read before a decision and reserved with it, exactly under concurrency and across gateway processes.
///
/// Every function runs on a connection the caller holds, so reservations share the caller's transaction with the
/// events that justify them.
///
/// ```swift
/// let admitted = try RateWindowStore.reserve(key, amount: 1, ceiling: 60, on: connection)
/// ```
public enum RateWindowStore {
    /// The current count of one window (a missing window counts 0).
    public static func count(_ key: some RateWindowKey, on connection: PostgresConnection) throws -> Double {
        let result = try connection.query(
            """
            SELECT count::float8 FROM tollgate.rate_windows
            WHERE server = $1 AND counter = $2 AND scope = $3 AND window_start = $4 AND window_seconds = $5
            """,
            [key.server, key.counter, key.scope, key.windowStart, key.windowSeconds])
        return result.rowCount > 0 ? try result[0].decode(Double.self, 0) : 0
    }

    /// Adds `amount` to the window if the count stays at or below `ceiling`; whether it did. Locks the window's row
    /// until the caller's transaction ends. The rule is `tollgate.reserve_counter` (migration 0011).
    public static func reserve(_ key: some RateWindowKey, amount: Double, ceiling: Double, on connection: PostgresConnection) throws -> Bool {
        let result = try connection.query(
            "SELECT tollgate.reserve_counter($1, $2, $3, $4, $5, $6::numeric, $7::numeric)",
            [key.server, key.counter, key.scope, key.windowStart, key.windowSeconds, numeric(amount), numeric(ceiling)])
        return try result[0].decode(Bool.self, 0)
    }

    /// Takes `amount` back from a window (`tollgate.release_counter`, migration 0011).
    public static func release(_ key: some RateWindowKey, amount: Double, on connection: PostgresConnection) throws {
        try connection.query(
            "SELECT tollgate.release_counter($1, $2, $3, $4, $5, $6::numeric)",
            [key.server, key.counter, key.scope, key.windowStart, key.windowSeconds, numeric(amount)])
    }

    /// Makes a group's reservations and appends the admitted decisions' events, with one statement
    /// (`tollgate.reserve_and_append`, migration 0010) on `connection` (its own transaction, or the caller's).
    ///
    /// - Parameters:
    ///   - reservations: each with the index (in `decisions`) of the decision it belongs to, in the order the rows are
    ///     to be locked (one order for every transaction, so that two groups sharing counters cannot deadlock).
    ///   - decisions: each decision's stream and event (checked by the caller: `EventStore.validate`).
    /// - Returns: for each decision, the index (in `reservations`) of the reservation that found no room, or `nil` when
    ///   it was admitted (its reservations made and its event appended).
    public static func reserveAndAppend<Reservation: RateWindowReservation>(
        _ reservations: [(decision: Int, reservation: Reservation)], decisions: [(stream: String, event: NewEvent)],
        on connection: PostgresConnection
    ) throws -> [Int?] {
        let result = try connection.query(
            """
            SELECT item, refused_by FROM tollgate.reserve_and_append(
                $1::int[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[], $7::numeric[], $8::numeric[],
                $9::text[], $10::text[], $11::jsonb[], $12::jsonb[])
            """,
            [
                PostgresArray(reservations.map { $0.decision + 1 }), PostgresArray(reservations.map(\.reservation.key.server)),
                PostgresArray(reservations.map(\.reservation.key.counter)), PostgresArray(reservations.map(\.reservation.key.scope)),
                PostgresArray(reservations.map(\.reservation.key.windowStart)), PostgresArray(reservations.map(\.reservation.key.windowSeconds)),
                PostgresArray(reservations.map { numeric($0.reservation.amount) }),
                PostgresArray(reservations.map { numeric($0.reservation.ceiling) }), PostgresArray(decisions.map(\.stream)),
                PostgresArray(decisions.map(\.event.type)), PostgresArray(decisions.map(\.event.dataText)),
                PostgresArray(decisions.map(\.event.metadataText)),
            ])
        var refused = [Int?](repeating: nil, count: decisions.count)
        for row in result.rows {
            let item = try row.decode(Int.self, 0) - 1
            let by = try row.decode(Int?.self, 1).map { $0 - 1 }
            guard refused.indices.contains(item), by.map(reservations.indices.contains) ?? true else {
                throw PostgresError.client(message: "reserve_and_append answered item \(item + 1) refused by \(by.map { $0 + 1 } ?? 0)")
            }
            refused[item] = by
        }
        guard result.rowCount == decisions.count else {
            throw PostgresError.client(message: "reserve_and_append returned \(result.rowCount) rows for \(decisions.count) decisions")
        }
        return refused
    }

    /// A number as PostgreSQL `numeric` text, exact for the integers and decimals that limits use.
    public static func numeric(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}

/// A rate window's name: a counter, for one scope, in one window of one upstream server (TollgateCore's `CounterKey`).
public protocol RateWindowKey: Sendable {
    var server: String { get }
    var counter: String { get }
    /// `grant:<grant>`, `agent:<agent>`, `session:<session>` or `global`.
    var scope: String { get }
    /// The window's start, in seconds since the Unix epoch (UTC).
    var windowStart: Int64 { get }
    /// The window's length in seconds.
    var windowSeconds: Int { get }
}

/// An increment to make in a window if it fits under a ceiling (TollgateCore's `CounterReservation`).
public protocol RateWindowReservation: Sendable {
    associatedtype Key: RateWindowKey
    var key: Key { get }
    /// What the call adds.
    var amount: Double { get }
    /// The most the window's count may reach with this call included.
    var ceiling: Double { get }
}
