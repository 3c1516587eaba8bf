import Foundation

/// The approval requests in `tollgate.approvals` (migration 0004): one row per request, holding the fold of its stream
/// as JSON (`state`) and copies of the fields that lists filter on.
///
/// Rows come back as their `state` JSON, for the caller to decode. Functions that take a connection run in the
/// caller's transaction; the others lease one from `client`.
///
/// ```swift
/// let store = ApprovalStore(client: client)
/// let due = try await store.due(now: Date(), limit: 500)
/// ```
public struct ApprovalStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// A row as the projection writes it.
    public struct Row: Sendable {
        public var approvalID: UUID
        public var version: Int64
        public var status: String
        public var consumed: Bool
        public var agent: String
        public var server: String
        public var tool: String
        public var argumentsHash: String
        public var policyHash: String
        public var requestedAt: Date
        public var expiresAt: Date
        /// The approval's state as JSON text.
        public var state: String

        public init(
            approvalID: UUID, version: Int64, status: String, consumed: Bool, agent: String, server: String, tool: String, argumentsHash: String,
            policyHash: String, requestedAt: Date, expiresAt: Date, state: String
        ) {
            self.approvalID = approvalID
            self.version = version
            self.status = status
            self.consumed = consumed
            self.agent = agent
            self.server = server
            self.tool = tool
            self.argumentsHash = argumentsHash
            self.policyHash = policyHash
            self.requestedAt = requestedAt
            self.expiresAt = expiresAt
            self.state = state
        }
    }

    /// A row the audit checks against the log.
    public struct Decided: Sendable {
        public var approvalID: UUID
        public var status: String
        public var consumed: Bool
        public var version: Int64
    }

    // MARK: - In the caller's transaction

    /// Serialises identical calls until the transaction ends: a lock on their fingerprint's text.
    public static func lock(fingerprint: String, on connection: PostgresConnection) throws {
        try connection.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", [fingerprint])
    }

    /// The agent's pending requests that have not expired (an expired one not yet marked frees its slot).
    public static func pendingCount(agent: String, now: Date, on connection: PostgresConnection) throws -> Int {
        let result = try connection.query(
            "SELECT count(*)::int FROM tollgate.approvals WHERE agent = $1 AND status = 'pending' AND expires_at > $2", [agent, now])
        return try result[0].decode(Int.self, 0)
    }

    /// The pending, and the approved but unused, requests of one call's fingerprint, oldest first.
    public static func candidates(
        agent: String, server: String, tool: String, argumentsHash: String, policyHash: String, on connection: PostgresConnection
    ) throws -> [JSONText] {
        let rows = try connection.query(
            """
            SELECT state::text FROM tollgate.approvals
            WHERE agent = $1 AND server = $2 AND tool = $3 AND arguments_hash = $4 AND policy_hash = $5
              AND (status = 'pending' OR (status = 'approved' AND NOT consumed))
            ORDER BY requested_at, approval_id
            """,
            [agent, server, tool, argumentsHash, policyHash])
        return try rows.rows.map { try $0.decode(JSONText.self, 0) }
    }

    /// The states of the approvals `ids` that exist, locked until the transaction ends when `forUpdate`.
    public static func states(_ ids: [UUID], forUpdate: Bool, on connection: PostgresConnection) throws -> [JSONText] {
        guard !ids.isEmpty else { return [] }
        let result = try connection.query(
            "SELECT state::text FROM tollgate.approvals WHERE approval_id = ANY($1::uuid[])" + (forUpdate ? " FOR UPDATE" : ""),
            [PostgresArray(ids.map { $0.uuidString.lowercased() })])
        return try result.rows.map { try $0.decode(JSONText.self, 0) }
    }

    /// Writes the rows in one statement: new ones inserted, existing ones updated when the row's version is newer.
    public static func write(_ rows: [Row], on connection: PostgresConnection) throws {
        guard !rows.isEmpty else { return }
        func column(_ value: (Row) -> any PostgresEncodable) -> PostgresArray {
            PostgresArray(encoding: rows.map(value))
        }
        try connection.query(
            """
            INSERT INTO tollgate.approvals AS a
                (approval_id, version, status, consumed, agent, server, tool, arguments_hash, policy_hash, requested_at, expires_at, state)
            SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::text[], $8::text[],
                                 $9::text[], $10::timestamptz[], $11::timestamptz[], $12::jsonb[])
            ON CONFLICT (approval_id) DO UPDATE SET
                version = EXCLUDED.version, status = EXCLUDED.status, consumed = EXCLUDED.consumed, state = EXCLUDED.state
            WHERE a.version < EXCLUDED.version
            """,
            [
                column(\.approvalID), column(\.version), column(\.status), column(\.consumed), column(\.agent), column(\.server), column(\.tool),
                column(\.argumentsHash), column(\.policyHash), column(\.requestedAt), column(\.expiresAt), column(\.state),
            ])
    }

    /// Empties the table for a rebuild (`TRUNCATE`, through `tollgate.reset_projection`, which the runtime role may run
    /// though it holds no TRUNCATE privilege).
    public static func reset(on connection: PostgresConnection) throws {
        try connection.query("SELECT tollgate.reset_projection('approvals')")
    }

    /// Up to 1000 approved or used rows after `after`, in approval id order: what `tollgate audit verify` checks.
    public static func decided(after: UUID, on connection: PostgresConnection) throws -> [Decided] {
        let rows = try connection.query(
            """
            SELECT approval_id::text, status, consumed, version FROM tollgate.approvals
            WHERE (status = 'approved' OR consumed) AND approval_id > $1::uuid ORDER BY approval_id LIMIT 1000
            """, [after.uuidString.lowercased()])
        var items: [Decided] = []
        for row in rows.rows {
            guard let id = UUID(uuidString: try row.decode(String.self, 0)) else { continue }
            items.append(
                Decided(
                    approvalID: id, status: try row.decode(String.self, 1), consumed: try row.decode(Bool.self, 2),
                    version: try row.decode(Int64.self, 3)))
        }
        return items
    }

    /// The most rows `decided(after:on:)` returns at once.
    public static let decidedPageSize = 1000

    // MARK: - On a connection of their own

    /// The states of the approvals `ids` that exist.
    public func states(_ ids: [UUID]) async throws -> [JSONText] {
        guard !ids.isEmpty else { return [] }
        return try await client.withConnection { connection in try Self.states(ids, forUpdate: false, on: connection) }
    }

    /// The states of the approvals whose version is past the one given for each: what changed since a waiter last looked.
    public func states(newerThan known: [UUID: Int64]) async throws -> [JSONText] {
        guard !known.isEmpty else { return [] }
        let ids = Array(known.keys)
        return try await client.withConnection { connection in
            let result = try connection.query(
                """
                SELECT a.state::text FROM tollgate.approvals a
                JOIN unnest($1::uuid[], $2::bigint[]) AS w(id, version) ON a.approval_id = w.id
                WHERE a.version > w.version
                """,
                [PostgresArray(ids.map { $0.uuidString.lowercased() }), PostgresArray(ids.map { known[$0]! })])
            return try result.rows.map { try $0.decode(JSONText.self, 0) }
        }
    }

    /// Pending requests whose expiry has passed, soonest first.
    public func due(now: Date, limit: Int) async throws -> [UUID] {
        try await client.withConnection { connection in
            try connection.query(
                "SELECT approval_id::text FROM tollgate.approvals WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
                [now, limit]
            ).rows.compactMap { UUID(uuidString: try $0.decode(String.self, 0)) }
        }
    }

    /// Up to `limit` requests, newest first, with each one's request time in microseconds since the Unix epoch (a
    /// page's cursor): of one status (`expired`: pending past its expiry), server, agent and tool when given, and
    /// before the cursor `after` when given.
    public func page(
        status: String?, server: String?, agent: String?, tool: String?, after: (requestedAtMicros: Int64, approvalID: UUID)?, limit: Int
    ) async throws -> [(state: JSONText, requestedAtMicros: Int64)] {
        try await client.withConnection { connection in
            let result = try connection.query(
                """
                SELECT state::text, (extract(epoch FROM requested_at) * 1000000)::bigint FROM tollgate.approvals
                WHERE ($1::text IS NULL
                       OR (status = $1 AND NOT ($1 = 'pending' AND expires_at <= now()))
                       OR ($1 = 'expired' AND status = 'pending' AND expires_at <= now()))
                  AND ($2::text IS NULL OR server = $2)
                  AND ($3::text IS NULL OR agent = $3) AND ($4::text IS NULL OR tool = $4)
                  AND ($5::bigint IS NULL OR (requested_at, approval_id) < (timestamptz 'epoch' + $5::bigint * interval '1 microsecond', $6::uuid))
                ORDER BY requested_at DESC, approval_id DESC
                LIMIT $7
                """,
                [status, server, agent, tool, after?.requestedAtMicros, after.map { $0.approvalID.uuidString.lowercased() }, limit])
            return try result.rows.map { (try $0.decode(JSONText.self, 0), try $0.decode(Int64.self, 1)) }
        }
    }
}
