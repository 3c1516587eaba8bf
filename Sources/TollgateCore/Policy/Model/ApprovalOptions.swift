/// How a `require_approval` action is run: how long the request lives, how long the agent's call is held open, how
/// many distinct reviewers must approve, and who may.
public struct ApprovalOptions: Sendable, Hashable {
    /// Seconds before an undecided request expires.
    public var timeout: Int
    /// Seconds the agent's call is held open waiting for a decision before it gets a "pending" result.
    public var hold: Int
    /// Distinct approvals needed.
    public var quorum: Int
    /// Reviewers allowed to decide; empty means any reviewer.
    public var reviewers: [String]

    /// One hour to decide.
    public static let defaultTimeout = 3600
    /// Below the 60 seconds after which common MCP clients give up on a call.
    public static let defaultHold = 45

    public init(timeout: Int = Self.defaultTimeout, hold: Int = Self.defaultHold, quorum: Int = 1, reviewers: [String] = []) {
        self.timeout = timeout
        self.hold = hold
        self.quorum = quorum
        self.reviewers = reviewers
    }
}
