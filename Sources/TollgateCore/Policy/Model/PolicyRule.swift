/// A conditional rule inside a tool entry: when its conditions hold, its action and limits apply to the call.
///
/// ```yaml
/// rules:
///   - name: large transfers need a second pair of eyes
///     when:
///       - {path: args.amount, op: gt, value: 1000}
///     action: require_approval
/// ```
///
/// A rule applies when every condition in ``when`` holds and not every condition in ``unless`` holds (an empty list
/// does not constrain). Of the rules that apply, a `deny` wins over everything, then limits, then `require_approval`,
/// then `allow`; see `docs/policy.md`.
public struct PolicyRule: Sendable, Hashable {
    /// A label for people, shown in `explain` and in decisions.
    public var name: String?
    /// Conditions that must all hold for the rule to apply.
    public var when: [PolicyCondition]
    /// Conditions that, when they all hold, stop the rule from applying.
    public var unless: [PolicyCondition]
    /// The action of the rule; `nil` means allow (a rule may exist only to add limits).
    public var action: PolicyAction?
    /// Shown to the agent when the rule denies, and to reviewers when it asks for approval.
    public var reason: String?
    /// How the approval is run, when the action is `require_approval`.
    public var approval: ApprovalOptions?
    /// Limits added to the call when the rule applies.
    public var limits: [PolicyLimit]

    public init(
        name: String? = nil,
        when: [PolicyCondition] = [],
        unless: [PolicyCondition] = [],
        action: PolicyAction? = nil,
        reason: String? = nil,
        approval: ApprovalOptions? = nil,
        limits: [PolicyLimit] = []
    ) {
        self.name = name
        self.when = when
        self.unless = unless
        self.action = action
        self.reason = reason
        self.approval = approval
        self.limits = limits
    }
}
