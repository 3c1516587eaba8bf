/// A person who may use the approvals API: their id (what the log records as the reviewer), their role, and the hash
/// of their API token (the token itself is never stored).
public struct ReviewerConfig: Sendable, Equatable {
    public var id: String
    public var role: ReviewerRole
    /// `sha256:` and 64 lowercase hex digits, from ``AgentKey/hash(_:)``.
    public var tokenHash: String
    /// The reviewer's Slack member id (`U012AB3CD`): a click on a Slack message's button by this member decides as
    /// this reviewer.
    public var slackUserID: String?

    public init(id: String, role: ReviewerRole, tokenHash: String, slackUserID: String? = nil) {
        self.id = id
        self.role = role
        self.tokenHash = tokenHash
        self.slackUserID = slackUserID
    }
}

/// What a token may do on `/v1`.
public enum ReviewerRole: String, Sendable, CaseIterable {
    /// Read and decide approvals.
    case reviewer
    /// Everything a reviewer may, and the operator's endpoints.
    case admin
    /// Read only: list and show approvals.
    case auditor

    /// Whether this role may approve or deny.
    public var mayDecide: Bool { self != .auditor }
}

/// Finds the configured reviewer a presented bearer token belongs to, in constant time like ``AgentDirectory``.
public struct ReviewerDirectory: Sendable {
    private let entries: [(reviewer: ReviewerConfig, digest: [UInt8])]

    public init(_ reviewers: [ReviewerConfig]) {
        entries = reviewers.compactMap { reviewer in AgentKey.digest(fromHash: reviewer.tokenHash).map { (reviewer, $0) } }
    }

    public var isEmpty: Bool { entries.isEmpty }

    public func reviewer(forToken token: String) -> ReviewerConfig? {
        let digest = AgentKey.digest(of: token)
        var found: Int?
        for index in entries.indices where AgentKey.constantTimeEqual(digest, entries[index].digest) && found == nil {
            found = index
        }
        return found.map { entries[$0].reviewer }
    }
}
