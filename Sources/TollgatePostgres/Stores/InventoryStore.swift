import Foundation

/// The tool inventory in `tollgate.tool_inventory` (migration 0018): one row per (server, tool) an upstream listed, the
/// fold of the server's stream `tools-<server>`. Written only by the `inventory` projection; read by `tollgate inventory`.
///
/// ```swift
/// let rows = try await InventoryStore(client: client).list(server: "github")
/// ```
public struct InventoryStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// One row, as read back. JSON columns are their text.
    public struct Row: Sendable, Hashable {
        public var server: String
        public var tool: String
        public var version: Int64
        public var hash: String
        public var definition: String?
        public var definitionBytes: Int
        public var category: String
        public var level: String
        public var reasons: String
        public var firstSeen: Date
        public var lastSeen: Date
        public var changes: Int
        public var lastChange: String?
        public var removed: Bool
        /// The accepted definition's hash (migration 0019): its latest `ToolDefinitionAccepted`, or its baseline.
        public var acceptedHash: String?
        /// Who accepted it; nil for a baseline (or nothing accepted).
        public var acceptedBy: String?
        public var acceptedAt: Date?
        /// The approval request whose approval accepted it, when that is how.
        public var acceptedApproval: String?
        /// `accepted`, `changed`, `new` or `removed`.
        public var status: String
    }

    /// What one inventory event does to its row.
    public enum Fold: Sendable {
        /// First sighting (or return after removal): the definition and rating; `first_seen` is kept if the row exists.
        case observed
        /// A new definition: one more change, and `lastChange` (the event's data) as the last diff.
        case changed(lastChange: String)
        /// Gone from a whole listing.
        case removed
        /// `hash` accepted by `by` (through approval request `approvalID`, when that is how); the current definition,
        /// rating and `last_seen` are left as they are.
        case accepted(by: String, approvalID: String?)
    }

    /// Folds one event (stream `version`, recorded `at`) into its row; an event at or below the row's version is
    /// already in it and changes nothing.
    public static func apply(
        _ fold: Fold, server: String, tool: String, version: Int64, at: Date, hash: String, definition: String?, definitionBytes: Int,
        category: String, level: String, reasons: String, baseline: Bool = false, on connection: PostgresConnection
    ) throws {
        switch fold {
        case .accepted(let by, let approvalID):
            try connection.query(
                """
                UPDATE tollgate.tool_inventory SET version = $3, accepted_hash = $4, accepted_by = $5, accepted_at = $6,
                    accepted_approval = $7
                WHERE server = $1 AND tool = $2 AND version < $3
                """, [server, tool, version, hash, by, at, approvalID])
        case .removed:
            try connection.query(
                """
                UPDATE tollgate.tool_inventory SET version = $3, removed = true, last_seen = $4
                WHERE server = $1 AND tool = $2 AND version < $3
                """, [server, tool, version, at])
        case .observed, .changed:
            var lastChange: String?
            if case .changed(let change) = fold { lastChange = change }
            try connection.query(
                """
                INSERT INTO tollgate.tool_inventory AS t
                    (server, tool, version, hash, definition, definition_bytes, category, level, reasons, first_seen, last_seen, changes,
                     last_change, removed, accepted_hash, accepted_at)
                VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb, $10, $10, CASE WHEN $11::jsonb IS NULL THEN 0 ELSE 1 END,
                        $11::jsonb, false, CASE WHEN $12 THEN $4 END, CASE WHEN $12 THEN $10::timestamptz END)
                ON CONFLICT (server, tool) DO UPDATE SET
                    version = EXCLUDED.version, hash = EXCLUDED.hash, definition = EXCLUDED.definition,
                    definition_bytes = EXCLUDED.definition_bytes, category = EXCLUDED.category, level = EXCLUDED.level,
                    reasons = EXCLUDED.reasons, last_seen = EXCLUDED.last_seen, removed = false,
                    changes = t.changes + CASE WHEN EXCLUDED.last_change IS NULL THEN 0 ELSE 1 END,
                    last_change = coalesce(EXCLUDED.last_change, t.last_change),
                    accepted_hash = CASE WHEN $12 THEN EXCLUDED.hash ELSE t.accepted_hash END,
                    accepted_by = CASE WHEN $12 THEN NULL ELSE t.accepted_by END,
                    accepted_at = CASE WHEN $12 THEN EXCLUDED.last_seen ELSE t.accepted_at END,
                    accepted_approval = CASE WHEN $12 THEN NULL ELSE t.accepted_approval END
                WHERE t.version < EXCLUDED.version
                """,
                [server, tool, version, hash, definition, definitionBytes, category, level, reasons, at, lastChange, baseline])
        }
    }

    /// Empties the table for a rebuild (through `tollgate.reset_projection`).
    public static func reset(on connection: PostgresConnection) throws {
        try connection.query("SELECT tollgate.reset_projection('inventory')")
    }

    /// The most rows `list` returns.
    public static let maxListRows = 10_000

    /// Every row (of one server, when given), by server and tool; at most ``maxListRows``.
    public func list(server: String? = nil, tool: String? = nil) async throws -> [Row] {
        try await page(Filter(server: server, tool: tool), limit: Self.maxListRows)
    }

    /// What a page of rows is restricted to; nil members do not restrict.
    public struct Filter: Sendable, Hashable {
        public var server: String?
        public var tool: String?
        public var category: String?
        public var level: String?
        public var status: String?

        public init(server: String? = nil, tool: String? = nil, category: String? = nil, level: String? = nil, status: String? = nil) {
            self.server = server
            self.tool = tool
            self.category = category
            self.level = level
            self.status = status
        }
    }

    /// Up to `limit` rows matching `filter`, by server and tool, starting after (`server`, `tool`) `after`.
    public func page(_ filter: Filter, after: (server: String, tool: String)? = nil, limit: Int) async throws -> [Row] {
        let result = try await client.query(
            """
            SELECT server, tool, version, hash, definition::text, definition_bytes, category, level, reasons::text, first_seen, last_seen,
                   changes, last_change::text, removed, accepted_hash, accepted_by, accepted_at, accepted_approval, status
            FROM tollgate.tool_inventory
            WHERE ($1::text IS NULL OR server = $1) AND ($2::text IS NULL OR tool = $2) AND ($3::text IS NULL OR category = $3)
              AND ($4::text IS NULL OR level = $4) AND ($5::text IS NULL OR status = $5)
              AND ($6::text IS NULL OR (server, tool) > ($6::text, $7::text))
            ORDER BY server, tool LIMIT $8
            """, [filter.server, filter.tool, filter.category, filter.level, filter.status, after?.server, after?.tool, limit])
        return try result.rows.map { row in
            Row(
                server: try row.decode(String.self, 0), tool: try row.decode(String.self, 1), version: try row.decode(Int64.self, 2),
                hash: try row.decode(String.self, 3), definition: try row.decode(String?.self, 4), definitionBytes: try row.decode(Int.self, 5),
                category: try row.decode(String.self, 6), level: try row.decode(String.self, 7), reasons: try row.decode(String.self, 8),
                firstSeen: try row.decode(Date.self, 9), lastSeen: try row.decode(Date.self, 10), changes: try row.decode(Int.self, 11),
                lastChange: try row.decode(String?.self, 12), removed: try row.decode(Bool.self, 13),
                acceptedHash: try row.decode(String?.self, 14), acceptedBy: try row.decode(String?.self, 15),
                acceptedAt: try row.decode(Date?.self, 16), acceptedApproval: try row.decode(String?.self, 17),
                status: try row.decode(String.self, 18))
        }
    }
}
