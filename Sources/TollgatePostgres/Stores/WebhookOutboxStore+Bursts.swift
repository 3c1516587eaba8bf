import Foundation

/// One agent's approval requests coalesced per endpoint (migration 0015): the first is queued at once and opens a
/// window; the rest within it go into one burst delivery, due when the window ends.
extension WebhookOutboxStore {
    /// The delivery of an agent's request that decides where the next request goes: the newest of the endpoint's for
    /// the agent, locked (a sender claiming it meanwhile skips it and takes it on its next poll).
    public struct AgentRequest: Sendable {
        public var id: String
        public var windowEndsAt: Date
        /// The approval ids of a burst; `nil` for a request queued on its own.
        public var coalesced: [UUID]?
        /// Not attempted yet: a burst's body may still be written again.
        public var open: Bool
    }

    /// The newest request delivery of `agent` to `endpoint` whose window had not ended at `time`.
    public static func latestRequest(endpoint: String, agent: String, at time: Date, on connection: PostgresConnection) throws -> AgentRequest? {
        let result = try connection.query(
            """
            SELECT id, (extract(epoch FROM window_ends_at) * 1000000)::bigint, array_to_string(coalesced, ','),
                   status = 'pending' AND attempts = 0 AND lease_until IS NULL
            FROM tollgate.webhook_deliveries
            WHERE endpoint = $1 AND agent = $2 AND window_ends_at > $3
            ORDER BY window_ends_at DESC, event_position DESC LIMIT 1 FOR UPDATE
            """, [endpoint, agent, time])
        guard result.rowCount == 1 else { return nil }
        let row = result[0]
        return AgentRequest(
            id: try row.decode(String.self, 0), windowEndsAt: Date(timeIntervalSince1970: Double(try row.decode(Int64.self, 1)) / 1_000_000),
            coalesced: try row.decode(String?.self, 2).map { $0.split(separator: ",").compactMap { UUID(uuidString: String($0)) } },
            open: try row.decode(Bool.self, 3))
    }

    /// Whether a delivery to `endpoint` already tells of `approvalID`'s request (queued on its own as `id`, or in a
    /// burst of `agent` whose window was open at `time`): a projection rebuild queues nothing twice.
    public static func tells(
        endpoint: String, agent: String, id: String, approvalID: UUID, at time: Date, on connection: PostgresConnection
    ) throws -> Bool {
        let result = try connection.query(
            """
            SELECT 1 FROM tollgate.webhook_deliveries WHERE id = $1
            UNION ALL
            SELECT 1 FROM tollgate.webhook_deliveries
            WHERE endpoint = $2 AND agent = $3 AND window_ends_at >= $5 AND $4 = ANY(coalesced)
            LIMIT 1
            """, [id, endpoint, agent, approvalID, time])
        return result.rowCount > 0
    }

    /// Queues an agent's request: on its own (`coalesced` nil, due at once, opening a window until `windowEndsAt`) or
    /// as a new burst (due at `dueAt`, the window's end).
    public static func enqueueRequest(
        id: String, endpoint: String, eventType: String, eventPosition: Int64, approvalID: UUID, agent: String, body: String, dueAt: Date?,
        windowEndsAt: Date, coalesced: [UUID]?, giveUpAt: Date, on connection: PostgresConnection
    ) throws {
        try connection.query(
            """
            INSERT INTO tollgate.webhook_deliveries
                (id, endpoint, event_type, event_position, approval_id, body, status, next_attempt_at, created_at, give_up_at,
                 agent, window_ends_at, coalesced)
            VALUES ($1, $2, $3, $4, $5, $6, 'pending', coalesce($7, now()), now(), $8, $9, $10, $11::uuid[])
            ON CONFLICT DO NOTHING
            """,
            [
                id, endpoint, eventType, eventPosition, approvalID, body, dueAt, giveUpAt, agent, windowEndsAt,
                coalesced.map { PostgresArray(encoding: $0) },
            ])
    }

    /// Adds a request to an open burst (locked by `latestRequest`) with its body written again.
    public static func coalesce(into id: String, approvalIDs: [UUID], body: String, on connection: PostgresConnection) throws {
        try connection.query(
            "UPDATE tollgate.webhook_deliveries SET coalesced = $2::uuid[], body = $3 WHERE id = $1 AND attempts = 0",
            [id, PostgresArray(encoding: approvalIDs), body])
    }
}
