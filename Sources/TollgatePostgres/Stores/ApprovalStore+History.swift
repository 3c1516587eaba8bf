import Foundation

extension ApprovalStore {
    /// Where a page of decided requests starts: strictly older than (`older`) or newer than (`newer`) a request's time
    /// (microseconds since the epoch) and id, the keys of `approvals_by_requested` and its per-filter siblings.
    public enum HistoryCursor: Sendable, Hashable {
        case older(requestedAtMicros: Int64, approvalID: UUID)
        case newer(requestedAtMicros: Int64, approvalID: UUID)
    }

    /// Up to `limit` decided requests (approved, denied or expired: anything no longer pending), newest first, of one
    /// server, agent and tool when given, from `cursor` on (nil: the newest): each one's state and request time in
    /// microseconds since the epoch. A `newer` page is read oldest first from the cursor and returned newest first,
    /// so paging back is keyset paging too, never an `OFFSET` over the log.
    public func decidedPage(
        server: String?, agent: String?, tool: String?, cursor: HistoryCursor?, limit: Int
    ) async throws -> [(state: JSONText, requestedAtMicros: Int64)] {
        let limit = max(1, min(limit, 501))
        let (newer, micros, id): (Bool, Int64?, String?) =
            switch cursor {
            case .none: (false, nil, nil)
            case .older(let at, let approvalID): (false, at, approvalID.uuidString.lowercased())
            case .newer(let at, let approvalID): (true, at, approvalID.uuidString.lowercased())
            }
        let direction = newer ? "ASC" : "DESC"
        let comparison = newer ? ">" : "<"
        return try await client.withConnection { connection in
            let result = try connection.query(
                """
                SELECT state::text, (extract(epoch FROM requested_at) * 1000000)::bigint FROM tollgate.approvals
                WHERE status <> 'pending'
                  AND ($1::text IS NULL OR server = $1) AND ($2::text IS NULL OR agent = $2) AND ($3::text IS NULL OR tool = $3)
                  AND ($4::bigint IS NULL
                       OR (requested_at, approval_id) \(comparison) (timestamptz 'epoch' + $4::bigint * interval '1 microsecond', $5::uuid))
                ORDER BY requested_at \(direction), approval_id \(direction)
                LIMIT $6
                """,
                [server, agent, tool, micros, id, limit])
            let rows = try result.rows.map { (try $0.decode(JSONText.self, 0), try $0.decode(Int64.self, 1)) }
            return newer ? rows.reversed() : rows
        }
    }
}
