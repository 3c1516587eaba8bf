/// What a policy says about one tool key (`tools.transfer`, `tools."Binance*"`) or one risk category
/// (`categories.financial`).
///
/// The entry's ``rules`` are tried against each call; the entry's own ``action`` applies when none of them does. A tool
/// entry with only ``limits`` allows the tool within those limits.
public struct ToolPolicy: Sendable, Hashable {
    /// The action when no rule applies; `nil` means allow.
    public var action: PolicyAction?
    /// Shown to the agent when the action is `deny`, and to reviewers when it is `require_approval`.
    public var reason: String?
    /// How the approval is run, when the action is `require_approval`. `nil` uses the defaults.
    public var approval: ApprovalOptions?
    /// Limits on every call this entry does not deny.
    public var limits: [PolicyLimit]
    /// Conditional rules, tried in order.
    public var rules: [PolicyRule]

    public init(
        action: PolicyAction? = nil,
        reason: String? = nil,
        approval: ApprovalOptions? = nil,
        limits: [PolicyLimit] = [],
        rules: [PolicyRule] = []
    ) {
        self.action = action
        self.reason = reason
        self.approval = approval
        self.limits = limits
        self.rules = rules
    }
}
