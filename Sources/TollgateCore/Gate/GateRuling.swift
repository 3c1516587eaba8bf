/// What the gate does with one `tools/call`, and what it records of it, ruled without I/O from the policy's decision.
///
/// The gate in `tollgate serve` reads the counts, evaluates the policy, and carries out the ruling: it records the
/// decision (with ``reservations``, in one transaction), then forwards, refuses, holds or answers "unknown tool". The
/// ruling itself is a value: the table of policy decision to action, record and refusal wording lives here and is
/// tested without a database.
///
/// ```swift
/// let decision = policy.evaluate(call, counts: counts)
/// let ruling = GateRuling(decision, tool: call.tool, approvals: true)
/// switch ruling.action {
/// case .forward: ...                        // record with ruling.reservations, then forward
/// case .refuse(let refusal): ...            // record, then answer refusal.text
/// case .hold(let requirement, let reservations): ...
/// case .unknownTool: ...                    // record, then answer as for a tool that does not exist
/// }
/// ```
public struct GateRuling: Sendable, Hashable {
    /// What becomes of the call.
    public var action: Action
    /// `ToolCallDecided.decision`, and the outcome the decision metrics count: `allow`, `deny`, `limited`,
    /// `require_approval`, `hidden` or `error`.
    public var decision: String
    /// `ToolCallDecided.reason`: why the call was refused, or the approval rule's reason.
    public var reason: String?
    /// `ToolCallDecided.retryAfter`.
    public var retryAfter: Int?
    /// The rule that decided: a policy path, or `catalog`, `policy` or `limits` when no rule did.
    public var rule: String
    /// The policy's content hash, as recorded.
    public var policyHash: String
    /// The counter reservations recorded with the decision and made in its transaction: an allowed call's.
    public var reservations: [CounterReservation]

    public enum Action: Sendable, Hashable {
        /// Forward the call once its decision (and reservations) are recorded.
        case forward
        /// Record the decision, then answer with this refusal.
        case refuse(GateRefusal)
        /// Hold the call for approval; `reservations` are made when it is released (the recorded decision makes none).
        case hold(ApprovalRequirement, reservations: [CounterReservation])
        /// Record the decision, then answer as for a tool that does not exist (the tool is hidden).
        case unknownTool
    }

    public init(
        action: Action, decision: String, reason: String?, retryAfter: Int?, rule: String, policyHash: String,
        reservations: [CounterReservation]
    ) {
        self.action = action
        self.decision = decision
        self.reason = reason
        self.retryAfter = retryAfter
        self.rule = rule
        self.policyHash = policyHash
        self.reservations = reservations
    }

    /// The ruling on a policy decision about `tool`. Without the approval workflow (`approvals: false`) a call that
    /// needs approval is refused, and recorded as `require_approval` with the reason it was refused.
    public init(_ decision: PolicyDecision, tool: String, approvals: Bool) {
        let rule = decision.rule
        let hash = decision.policyHash
        let name = decision.outcome.name
        switch decision.outcome {
        case .allow:
            self.init(
                action: .forward, decision: name, reason: nil, retryAfter: nil, rule: rule, policyHash: hash, reservations: decision.reservations)
        case .deny(let reason):
            self.init(
                action: .refuse(.denied(tool: tool, reason: reason, rule: rule, policyHash: hash)), decision: name, reason: reason, retryAfter: nil,
                rule: rule, policyHash: hash, reservations: [])
        case .limited(let retryAfter, let reason):
            self.init(
                action: .refuse(.limited(tool: tool, reason: reason, retryAfter: retryAfter, rule: rule, policyHash: hash)), decision: name,
                reason: reason, retryAfter: retryAfter, rule: rule, policyHash: hash, reservations: [])
        case .requireApproval(let requirement) where approvals:
            self.init(
                action: .hold(requirement, reservations: decision.reservations), decision: name, reason: requirement.reason, retryAfter: nil,
                rule: rule, policyHash: hash, reservations: [])
        case .requireApproval:
            self.init(
                action: .refuse(.approvalUnavailable(tool: tool, rule: rule, policyHash: hash)), decision: name,
                reason: GateRefusal.approvalUnavailableReason, retryAfter: nil, rule: rule, policyHash: hash, reservations: [])
        case .hidden:
            self.init(action: .unknownTool, decision: name, reason: nil, retryAfter: nil, rule: rule, policyHash: hash, reservations: [])
        }
    }
}

// MARK: - Refusals no policy rule made

extension GateRuling {
    /// The upstream's tool list could not be had, and every call is decided against it. Recorded under the server's
    /// policy when one is loaded (`policyHash`, else empty).
    public static func catalogUnavailable(tool: String, reason: String, policyHash: String) -> GateRuling {
        GateRuling(
            action: .refuse(.catalogUnavailable(tool: tool, reason: reason)), decision: "error", reason: reason, retryAfter: nil,
            rule: "catalog", policyHash: policyHash, reservations: [])
    }

    /// No valid policy is loaded for `server`: every call is refused (fail closed).
    public static func noPolicy(server: String) -> GateRuling {
        GateRuling(
            action: .refuse(.noPolicy(server: server)), decision: "error", reason: GateRefusal.noPolicyReason(server: server), retryAfter: nil,
            rule: "policy", policyHash: "", reservations: [])
    }

    /// Every round of deciding lost its reservations to concurrent calls.
    public static func contended(tool: String, policyHash: String) -> GateRuling {
        GateRuling(
            action: .refuse(.contended(tool: tool, policyHash: policyHash)), decision: "limited", reason: GateRefusal.contendedReason(tool: tool),
            retryAfter: nil, rule: "limits", policyHash: policyHash, reservations: [])
    }
}
