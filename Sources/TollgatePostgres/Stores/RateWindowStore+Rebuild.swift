extension RateWindowStore {
    /// Recomputes every rate window from the log (`tollgate projections rebuild rate_windows`), on `connection`, in
    /// the caller's transaction: the reservations of each `ToolCallDecided` and `ApprovalConsumed`, less those each
    /// `ToolCallCompleted` gave back, as `RateWindowLedger` folds them. Returns how many events it folded.
    ///
    /// `tollgate.rebuild_rate_windows` (migration 0013) takes the table first, so calls with limits wait for it and none
    /// is counted twice or lost; the rate windows are written with each decision, not by the projector, so this is the
    /// only way they are rebuilt.
    public static func rebuild(on connection: PostgresConnection) throws -> Int {
        // It folds the whole log in one statement, which may take longer than the session's statement time-out.
        try connection.execute("SET LOCAL statement_timeout = 0")
        return try connection.query("SELECT tollgate.rebuild_rate_windows()")[0].decode(Int.self, 0)
    }
}
