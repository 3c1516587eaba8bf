import Foundation

/// The webhooks' outbox (migration 0006): one row per message to send in `tollgate.webhook_deliveries`, with the exact
/// body, and one row per attempt in `tollgate.webhook_attempts`.
///
/// ```swift
/// let outbox = WebhookOutboxStore(client: client)
/// if let delivery = try await outbox.claim(endpoint: "reviewers", leaseSeconds: 40) { ... }
/// ```
public struct WebhookOutboxStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// A delivery leased to one sender for one attempt.
    public struct Delivery: Sendable {
        /// The `webhook-id`, the same on every attempt.
        public var id: String
        public var body: String
        /// This attempt's number, from 1.
        public var attempt: Int
        public var giveUpAt: Date
    }

    /// One delivery as `tollgate webhooks deliveries` lists it, with times as UTC text to the millisecond.
    public struct Listed: Sendable {
        public var id: String
        public var endpoint: String
        public var event: String
        public var approvalID: String?
        public var status: String
        public var attempts: Int
        public var createdAt: String
        public var nextAttemptAt: String
        public var lastStatus: Int?
        public var lastError: String?
        /// The attempts as a JSON array of `attempt`, `status_code`, `latency_ms`, `error` and `at`.
        public var attemptLog: String
    }

    /// Queues a message for an endpoint, due at once, unless a delivery with its id exists (the id comes from the
    /// endpoint and the event's position, so queuing an event again does nothing), in the caller's transaction.
    public static func enqueue(
        id: String, endpoint: String, eventType: String, eventPosition: Int64, approvalID: UUID, body: String, giveUpAt: Date,
        on connection: PostgresConnection
    ) throws {
        try connection.query(
            """
            INSERT INTO tollgate.webhook_deliveries
                (id, endpoint, event_type, event_position, approval_id, body, status, next_attempt_at, created_at, give_up_at)
            VALUES ($1, $2, $3, $4, $5, $6, 'pending', now(), now(), $7)
            ON CONFLICT DO NOTHING
            """,
            [id, endpoint, eventType, eventPosition, approvalID, body, giveUpAt])
    }

    /// The endpoint's oldest due delivery, leased to the caller for `leaseSeconds` (other senders skip it meanwhile),
    /// with its attempt counted.
    public func claim(endpoint: String, leaseSeconds: Int) async throws -> Delivery? {
        try await client.withConnection { connection in
            let result = try connection.query(
                """
                UPDATE tollgate.webhook_deliveries SET attempts = attempts + 1, lease_until = now() + $2 * interval '1 second'
                WHERE id = (
                    SELECT id FROM tollgate.webhook_deliveries
                    WHERE endpoint = $1 AND status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
                    ORDER BY next_attempt_at, event_position LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING id, body, attempts, (extract(epoch FROM give_up_at) * 1000)::bigint
                """, [endpoint, leaseSeconds])
            guard result.rowCount == 1 else { return nil }
            let row = result[0]
            return Delivery(
                id: try row.decode(String.self, 0), body: try row.decode(String.self, 1), attempt: try row.decode(Int.self, 2),
                giveUpAt: Date(timeIntervalSince1970: Double(try row.decode(Int64.self, 3)) / 1000))
        }
    }

    /// Records an attempt and where the delivery stands after it (`delivered`, `failed` or `pending` until
    /// `nextAttemptAt`), releasing its lease, in one transaction.
    public func record(
        attempt: Int, of deliveryID: String, startedAt: Date, statusCode: Int?, latencyMillis: Double, error: String?, outcome: String,
        nextAttemptAt: Date, lastError: String?
    ) async throws {
        try await client.withTransaction { connection in
            try connection.query(
                """
                INSERT INTO tollgate.webhook_attempts (delivery_id, attempt, started_at, status_code, latency_ms, error)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
                """, [deliveryID, attempt, startedAt, statusCode, latencyMillis, error])
            try connection.query(
                """
                UPDATE tollgate.webhook_deliveries
                SET status = $2, lease_until = NULL, next_attempt_at = $3, last_status = $4, last_error = $5,
                    delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END
                WHERE id = $1
                """, [deliveryID, outcome, nextAttemptAt, statusCode, lastError])
        }
    }

    /// Up to `limit` deliveries, newest first, of one endpoint and in one status when given, with their attempts.
    public func list(endpoint: String?, status: String?, limit: Int) async throws -> [Listed] {
        let rows = try await client.query(
            """
            SELECT d.id, d.endpoint, d.event_type, d.approval_id::text, d.status, d.attempts,
                   to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   to_char(d.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   d.last_status, d.last_error,
                   coalesce((SELECT json_agg(json_build_object('attempt', a.attempt, 'status_code', a.status_code,
                              'latency_ms', round(a.latency_ms::numeric, 1), 'error', a.error,
                              'at', to_char(a.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) ORDER BY a.attempt)
                             FROM tollgate.webhook_attempts a WHERE a.delivery_id = d.id), '[]')::text
            FROM tollgate.webhook_deliveries d
            WHERE ($1::text IS NULL OR d.endpoint = $1) AND ($2::text IS NULL OR d.status = $2)
            ORDER BY d.created_at DESC, d.id LIMIT $3
            """, [endpoint, status, limit])
        return try rows.rows.map { row in
            Listed(
                id: try row.decode(String.self, 0), endpoint: try row.decode(String.self, 1), event: try row.decode(String.self, 2),
                approvalID: try row.decode(String?.self, 3), status: try row.decode(String.self, 4), attempts: try row.decode(Int.self, 5),
                createdAt: try row.decode(String.self, 6), nextAttemptAt: try row.decode(String.self, 7), lastStatus: try row.decode(Int?.self, 8),
                lastError: try row.decode(String?.self, 9), attemptLog: try row.decode(String.self, 10))
        }
    }
}
