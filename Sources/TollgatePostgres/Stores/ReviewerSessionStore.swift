import Foundation

/// The reviewer page's sessions in `tollgate.ui_sessions` (migration 0016), keyed by the SHA-256 of the session
/// cookie's value (64 lowercase hex digits): the cookie itself is never stored.
///
/// A session is alive while it was used within the idle time-out and made within its lifetime; `touch` finds a live
/// session and moves its last use on in one statement, so several gateways on one database agree on it.
///
/// ```swift
/// let sessions = ReviewerSessionStore(client: client)
/// try await sessions.create(.init(cookieHash: hash, reviewer: "alice", tokenHash: tokenHash, csrfToken: csrf, createdAt: now, lastSeenAt: now))
/// let session = try await sessions.touch(cookieHash: hash, now: Date(), idleSince: idleCutoff, createdSince: lifetimeCutoff)
/// ```
public struct ReviewerSessionStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// One session as stored.
    public struct Session: Sendable, Hashable {
        public var cookieHash: String
        public var reviewer: String
        /// The configuration's `token_hash` of the reviewer when they signed in.
        public var tokenHash: String
        public var csrfToken: String
        public var createdAt: Date
        public var lastSeenAt: Date

        public init(cookieHash: String, reviewer: String, tokenHash: String, csrfToken: String, createdAt: Date, lastSeenAt: Date) {
            self.cookieHash = cookieHash
            self.reviewer = reviewer
            self.tokenHash = tokenHash
            self.csrfToken = csrfToken
            self.createdAt = createdAt
            self.lastSeenAt = lastSeenAt
        }
    }

    /// Records a new session.
    public func create(_ session: Session) async throws {
        try await client.query(
            """
            INSERT INTO tollgate.ui_sessions (cookie_hash, reviewer, token_hash, csrf_token, created_at, last_seen_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            """,
            [session.cookieHash, session.reviewer, session.tokenHash, session.csrfToken, session.createdAt, session.lastSeenAt])
    }

    /// The session of `cookieHash` if it was last used after `idleSince` and made after `createdSince`, with its last
    /// use moved to `now`; `nil` (and the row deleted) when it has ended or there is none.
    public func touch(cookieHash: String, now: Date, idleSince: Date, createdSince: Date) async throws -> Session? {
        try await client.withConnection { connection in
            let result = try connection.query(
                """
                UPDATE tollgate.ui_sessions SET last_seen_at = greatest(last_seen_at, $2)
                WHERE cookie_hash = $1 AND last_seen_at > $3 AND created_at > $4
                RETURNING reviewer, token_hash, csrf_token, created_at, last_seen_at
                """,
                [cookieHash, now, idleSince, createdSince])
            guard let row = result.rows.first else {
                try connection.query("DELETE FROM tollgate.ui_sessions WHERE cookie_hash = $1", [cookieHash])
                return nil
            }
            return Session(
                cookieHash: cookieHash, reviewer: try row.decode(String.self, 0), tokenHash: try row.decode(String.self, 1),
                csrfToken: try row.decode(String.self, 2), createdAt: try row.decode(Date.self, 3), lastSeenAt: try row.decode(Date.self, 4))
        }
    }

    /// Ends one session (sign-out, or a reviewer no longer in the configuration).
    public func delete(cookieHash: String) async throws {
        try await client.query("DELETE FROM tollgate.ui_sessions WHERE cookie_hash = $1", [cookieHash])
    }

    /// Ends the oldest sessions of `reviewer` beyond the newest `keeping`; returns how many.
    @discardableResult
    public func deleteOldest(reviewer: String, keeping: Int) async throws -> Int {
        try await client.query(
            """
            DELETE FROM tollgate.ui_sessions WHERE cookie_hash IN (
                SELECT cookie_hash FROM tollgate.ui_sessions WHERE reviewer = $1 ORDER BY created_at DESC, cookie_hash OFFSET $2)
            """,
            [reviewer, keeping]
        ).affectedRows
    }

    /// Ends every session of `reviewer`; returns how many there were.
    @discardableResult
    public func deleteAll(reviewer: String) async throws -> Int {
        try await client.query("DELETE FROM tollgate.ui_sessions WHERE reviewer = $1", [reviewer]).affectedRows
    }

    /// Deletes up to `limit` sessions that have ended (idle since `idleSince`, or made before `createdSince`); returns
    /// how many.
    @discardableResult
    public func deleteEnded(idleSince: Date, createdSince: Date, limit: Int = 1000) async throws -> Int {
        try await client.query(
            """
            DELETE FROM tollgate.ui_sessions WHERE cookie_hash IN (
                SELECT cookie_hash FROM tollgate.ui_sessions WHERE last_seen_at <= $1 OR created_at <= $2 LIMIT $3)
            """,
            [idleSince, createdSince, limit]
        ).affectedRows
    }

    /// How many sessions are alive.
    public func countAlive(idleSince: Date, createdSince: Date) async throws -> Int {
        let result = try await client.query(
            "SELECT count(*)::int FROM tollgate.ui_sessions WHERE last_seen_at > $1 AND created_at > $2", [idleSince, createdSince])
        return try result[0].decode(Int.self, 0)
    }
}
