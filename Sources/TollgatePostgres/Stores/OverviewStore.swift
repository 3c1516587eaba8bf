import Foundation

/// What the reviewer page's overview reads: the `decisions` projection's counts of tools/call decisions a minute
/// (`tollgate.decision_minutes` and `tollgate.tool_minutes`, migration 0017) and how far the projections are behind the
/// log. Every read is bounded: a range of minutes on the tables' primary keys, a `LIMIT`, and a capped count of the
/// events a projection has still to apply.
///
/// ```swift
/// let store = OverviewStore(client: client)
/// let minutes = try await store.decisionsPerMinute(minutes: 60)
/// let tools = try await store.busiestTools(minutes: 60, limit: 10)
/// let lag = try await store.projectionLag(names: ["streams", "approvals"])
/// ```
public struct OverviewStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// One minute's calls of one decision.
    public struct MinuteCount: Sendable, Hashable {
        /// The minute's start, in seconds since the Unix epoch.
        public var minute: Int64
        public var decision: String
        public var calls: Int64
    }

    /// One tool's calls of one decision, over the range asked for. `server` and `tool` are empty for the calls of the
    /// tools not counted by name (see migration 0017).
    public struct ToolCount: Sendable, Hashable {
        public var server: String
        public var tool: String
        public var decision: String
        public var calls: Int64
    }

    /// How far one projection is behind the log.
    public struct ProjectionLag: Sendable, Hashable {
        public var name: String
        /// Events in the log past its checkpoint, counted up to the cap asked for (`capped` when there are more).
        public var behind: Int64
        public var capped: Bool
        /// Seconds since the oldest event past its checkpoint was recorded (0 when it is caught up).
        public var oldestSeconds: Double
        /// When its checkpoint last moved (nil: it has none yet).
        public var checkpointMovedAt: Date?
    }

    // MARK: - The projection (in the projector's transaction)

    /// Counts the events at `positions` (of types `decidedType` and `summarizedType`; others are ignored) into the
    /// tables through `tollgate.count_decisions`; returns the calls counted.
    @discardableResult
    public static func count(
        positions: [Int64], decidedType: String, summarizedType: String, maxNamedTools: Int, keepMinutes: Int, on connection: PostgresConnection
    ) throws -> Int64 {
        guard !positions.isEmpty else { return 0 }
        let result = try connection.query(
            "SELECT tollgate.count_decisions($1::bigint[], $2, $3, $4, $5)",
            [PostgresArray(positions), decidedType, summarizedType, maxNamedTools, keepMinutes])
        return try result[0].decode(Int64.self, 0)
    }

    /// Empties both tables for a rebuild (through `tollgate.reset_projection`).
    public static func reset(on connection: PostgresConnection) throws {
        try connection.query("SELECT tollgate.reset_projection('decisions')")
    }

    // MARK: - Reading

    /// The counts of the last `minutes` minutes (the current one included), by the database's clock, oldest first; and
    /// the database's time (seconds since the epoch) they were read at. At most `minutes` × 32 rows.
    public func decisionsPerMinute(minutes: Int) async throws -> (now: Double, counts: [MinuteCount]) {
        let minutes = max(1, min(minutes, 24 * 60))
        return try await client.withConnection { connection in
            let result = try connection.query(
                """
                SELECT (extract(epoch FROM d.minute))::bigint, d.decision, d.calls, extract(epoch FROM now())::float8
                FROM tollgate.decision_minutes d
                WHERE d.minute > date_trunc('minute', now()) - make_interval(mins => $1) AND d.minute <= now()
                ORDER BY d.minute, d.decision
                LIMIT $2
                """, [minutes, minutes * 32])
            var now = Date().timeIntervalSince1970
            var counts: [MinuteCount] = []
            for row in result.rows {
                counts.append(
                    MinuteCount(minute: try row.decode(Int64.self, 0), decision: try row.decode(String.self, 1), calls: try row.decode(Int64.self, 2))
                )
                now = try row.decode(Double.self, 3)
            }
            if result.rowCount == 0 {
                now = try connection.query("SELECT extract(epoch FROM now())::float8")[0].decode(Double.self, 0)
            }
            return (now, counts)
        }
    }

    /// The `limit` tools with the most calls in the last `minutes` minutes, busiest first (ties by server and tool), each
    /// with its calls by decision.
    public func busiestTools(minutes: Int, limit: Int) async throws -> [ToolCount] {
        let minutes = max(1, min(minutes, 24 * 60))
        let limit = max(1, min(limit, 100))
        return try await client.withConnection { connection in
            let result = try connection.query(
                """
                WITH recent AS (
                    SELECT t.server, t.tool, t.decision, t.calls FROM tollgate.tool_minutes t
                    WHERE t.minute > date_trunc('minute', now()) - make_interval(mins => $1) AND t.minute <= now()
                ), busiest AS (
                    SELECT r.server, r.tool, sum(r.calls) AS total FROM recent r
                    GROUP BY r.server, r.tool ORDER BY total DESC, r.server, r.tool LIMIT $2
                )
                SELECT b.server, b.tool, r.decision, sum(r.calls)::bigint, b.total::bigint
                FROM busiest b JOIN recent r ON r.server = b.server AND r.tool = b.tool
                GROUP BY b.server, b.tool, r.decision, b.total
                ORDER BY b.total DESC, b.server, b.tool, r.decision
                """, [minutes, limit])
            return try result.rows.map { row in
                ToolCount(
                    server: try row.decode(String.self, 0), tool: try row.decode(String.self, 1), decision: try row.decode(String.self, 2),
                    calls: try row.decode(Int64.self, 3))
            }
        }
    }

    /// How far each named projection is behind the log: the events past its checkpoint (counted up to `cap`, on the
    /// log's commit-order index) and the age of the oldest of them.
    public func projectionLag(names: [String], cap: Int = 10_000) async throws -> [ProjectionLag] {
        guard !names.isEmpty else { return [] }
        return try await client.withConnection { connection in
            let result = try connection.query(
                """
                SELECT n.name, c.updated_at,
                       (SELECT count(*) FROM (
                            SELECT 1 FROM tollgate.events e
                            WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
                            ORDER BY e.transaction_id, e.position LIMIT $2 + 1) AS past),
                       (SELECT extract(epoch FROM now() - e.recorded_at)::float8 FROM tollgate.events e
                        WHERE (e.transaction_id, e.position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
                        ORDER BY e.transaction_id, e.position LIMIT 1)
                FROM unnest($1::text[]) AS n(name)
                LEFT JOIN tollgate.projection_checkpoints c ON c.name = n.name
                ORDER BY n.name
                """, [PostgresArray(names), cap])
            return try result.rows.map { row in
                let counted = try row.decode(Int64.self, 2)
                return ProjectionLag(
                    name: try row.decode(String.self, 0), behind: min(counted, Int64(cap)), capped: counted > Int64(cap),
                    oldestSeconds: max(0, try row.decode(Double?.self, 3) ?? 0), checkpointMovedAt: try row.decode(Date?.self, 1))
            }
        }
    }
}
