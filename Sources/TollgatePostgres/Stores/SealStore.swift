/// The hash chain over the log in `tollgate.event_seals` (migration 0005): each event's seal, in global order, as 64
/// lowercase hex digits; and the log's events read as the seal hashes them, for `tollgate audit verify`.
///
/// Every function runs on a connection the caller holds.
///
/// ```swift
/// let head = try SealStore.head(on: connection)   // where the chain stands
/// ```
public enum SealStore {
    /// One event's seal: its position in the log and the chain up to it, in hex.
    public struct Seal: Sendable, Hashable {
        public var position: LogPosition
        public var chain: String

        public init(position: LogPosition, chain: String) {
            self.position = position
            self.chain = chain
        }
    }

    /// Stores the seals of events that have none yet, in one statement.
    public static func append(_ seals: [Seal], on connection: PostgresConnection) throws {
        try connection.query(
            """
            INSERT INTO tollgate.event_seals (transaction_id, position, chain)
            SELECT * FROM unnest($1::xid8[], $2::bigint[], $3::text[])
            """,
            [
                PostgresArray(seals.map { String($0.position.transactionID) }), PostgresArray(seals.map { String($0.position.position) }),
                PostgresArray(seals.map(\.chain)),
            ])
    }

    /// The last seal: where the chain stands.
    public static func head(on connection: PostgresConnection) throws -> Seal? {
        let result = try connection.query(
            // `s.transaction_id`: unqualified, ORDER BY would name the text output column and put "999" after "1000".
            "SELECT transaction_id::text, position, chain FROM tollgate.event_seals s ORDER BY s.transaction_id DESC, s.position DESC LIMIT 1")
        guard result.rowCount == 1 else { return nil }
        let position = LogPosition(transactionID: try result[0].decode(UInt64.self, 0), position: try result[0].decode(Int64.self, 1))
        return Seal(position: position, chain: try result[0].decode(String.self, 2))
    }

    /// The seals after `cursor`, up to `upper` (all remaining ones when `nil`), in global order.
    public static func seals(after cursor: LogPosition, through upper: LogPosition?, on connection: PostgresConnection) throws -> [Seal] {
        let seals = try connection.query(
            """
            SELECT transaction_id::text, position, chain FROM tollgate.event_seals s
            WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
              AND ($3::text IS NULL OR (transaction_id, position) <= ($3::text::xid8, $4::bigint))
            ORDER BY s.transaction_id, s.position
            """, [String(cursor.transactionID), cursor.position, upper.map { String($0.transactionID) }, upper?.position ?? 0])
        var sealed: [Seal] = []
        sealed.reserveCapacity(seals.rowCount)
        for index in 0..<seals.rowCount {
            let row = seals[index]
            sealed.append(
                Seal(
                    position: LogPosition(transactionID: try row.decode(UInt64.self, 0), position: try row.decode(Int64.self, 1)),
                    chain: try row.decode(String.self, 2)))
        }
        return sealed
    }

    /// Up to `limit` events after `cursor`, in global order (committed or not: the chain is checked as far as it is
    /// sealed), in PostgreSQL's binary format, so that no number or time is rendered as text and parsed back (jsonb
    /// is its version byte and its text). Their columns are `EventColumn`'s.
    public static func events(after cursor: LogPosition, limit: Int, on connection: PostgresConnection) throws -> PostgresResult {
        try connection.query(
            """
            SELECT position, transaction_id, stream_id, version, type, data, metadata, recorded_at
            FROM tollgate.events e WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
            ORDER BY e.transaction_id, e.position LIMIT $3
            """, [String(cursor.transactionID), cursor.position, limit], binaryResults: true)
    }

    /// The columns of `events(after:limit:on:)`.
    public enum EventColumn {
        public static let position = 0
        public static let transactionID = 1
        public static let streamID = 2
        public static let version = 3
        public static let type = 4
        public static let data = 5
        public static let metadata = 6
        public static let recordedAt = 7
    }
}
