/// A decision with the reasoning behind it: every rule that was considered, whether it applied, and why.
public struct PolicyExplanation: Sendable, Hashable, CustomStringConvertible {
    public var decision: PolicyDecision
    public var steps: [Step]

    /// One rule, entry or limit that was considered.
    public struct Step: Sendable, Hashable {
        /// The rule's path, such as `tools.transfer.rules[0]`.
        public var path: String
        /// Whether it applied to the call.
        public var applied: Bool
        /// Why it did or did not apply.
        public var detail: String

        public init(path: String, applied: Bool, detail: String) {
            self.path = path
            self.applied = applied
            self.detail = detail
        }
    }

    public var description: String {
        var lines = ["decision: \(decision.outcome.summary)", "rule: \(decision.rule)", "policy: \(decision.policyHash)"]
        for reservation in decision.reservations {
            lines.append(
                "counts: +\(CanonicalNumber.format(reservation.amount)) on \(reservation.key) (ceiling \(CanonicalNumber.format(reservation.ceiling)))"
            )
        }
        lines.append("considered:")
        for step in steps {
            lines.append("  \(step.applied ? "applied    " : "not applied") \(step.path): \(step.detail)")
        }
        return lines.joined(separator: "\n")
    }
}

extension PolicyDecision.Outcome {
    /// One line for people: `deny: transfers are not allowed`.
    public var summary: String {
        switch self {
        case .allow: "allow"
        case .deny(let reason): "deny: \(reason)"
        case .limited(let retryAfter, let reason): "limited (retry after \(retryAfter)s): \(reason)"
        case .requireApproval(let requirement):
            "require_approval (quorum \(requirement.quorum), hold \(requirement.hold)s, expires after \(requirement.timeout)s"
                + (requirement.reviewers.isEmpty ? "" : ", reviewers: \(requirement.reviewers.joined(separator: ", "))") + ")"
                + (requirement.reason.map { ": \($0)" } ?? "")
        case .hidden: "hidden"
        }
    }
}
