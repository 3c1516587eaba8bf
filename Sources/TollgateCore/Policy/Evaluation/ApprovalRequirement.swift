/// What a held call needs before it may run: the options of the `require_approval` rule that decided, with defaults
/// filled in.
public struct ApprovalRequirement: Sendable, Hashable {
    /// Seconds before the request expires.
    public var timeout: Int
    /// Seconds to hold the agent's call open.
    public var hold: Int
    /// Distinct approvals needed.
    public var quorum: Int
    /// Who may decide; empty means any reviewer.
    public var reviewers: [String]
    /// The rule's `reason`, for reviewers.
    public var reason: String?

    public init(timeout: Int, hold: Int, quorum: Int, reviewers: [String], reason: String?) {
        self.timeout = timeout
        self.hold = hold
        self.quorum = quorum
        self.reviewers = reviewers
        self.reason = reason
    }

    init(_ options: ApprovalOptions?, reason: String?) {
        let options = options ?? ApprovalOptions()
        self.init(timeout: options.timeout, hold: options.hold, quorum: options.quorum, reviewers: options.reviewers, reason: reason)
    }
}
