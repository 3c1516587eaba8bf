/// What a policy does with a call that a rule, a tool entry or a category selects.
public enum PolicyAction: String, Sendable, Hashable, CaseIterable {
    /// Forward the call (within any limits).
    case allow
    /// Refuse the call with the rule's `reason`.
    case deny
    /// Hold the call until enough reviewers approve it.
    case requireApproval = "require_approval"
}
