/// The result of evaluating one call: what to do, which rule said so, which policy version, and what to count.
public struct PolicyDecision: Sendable, Hashable {
    public var outcome: Outcome
    /// The path of the rule that decided: `tools.transfer.rules[1]`, `tools.transfer.limits[0]`, `hide[2]`,
    /// `categories.financial`, `default`.
    public var rule: String
    /// The policy's content hash (``CompiledPolicy/contentHash``).
    public var policyHash: String
    /// Increments to make if the call goes ahead (empty unless the outcome is allow or requireApproval).
    public var reservations: [CounterReservation]

    public init(outcome: Outcome, rule: String, policyHash: String, reservations: [CounterReservation] = []) {
        self.outcome = outcome
        self.rule = rule
        self.policyHash = policyHash
        self.reservations = reservations
    }

    /// What to do with the call.
    public enum Outcome: Sendable, Hashable {
        /// Forward it (after making the reservations).
        case allow
        /// Refuse it; the reason is for the agent.
        case deny(reason: String)
        /// Refuse it for now: a limit is reached. Retrying after `retryAfter` seconds may succeed.
        case limited(retryAfter: Int, reason: String)
        /// Hold it for human approval.
        case requireApproval(ApprovalRequirement)
        /// The tool is hidden: absent from `tools/list`, and a call is answered as for an unknown tool.
        case hidden
    }
}

extension PolicyDecision.Outcome {
    /// `allow`, `deny`, `limited`, `require_approval` or `hidden`.
    public var name: String {
        switch self {
        case .allow: "allow"
        case .deny: "deny"
        case .limited: "limited"
        case .requireApproval: "require_approval"
        case .hidden: "hidden"
        }
    }
}
