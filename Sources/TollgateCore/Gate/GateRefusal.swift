import Foundation

/// A `tools/call` the gate refuses, as the agent reads it: the text of the `isError` result, the particulars the
/// result carries in `_meta["io.tollgate/decision"]`, and, for a held call, its `structuredContent`.
///
/// Every refusal the gateway words is made here, so the wording is one table that tests can read without a database.
///
/// ```swift
/// let refusal = GateRefusal.denied(tool: "transfer", reason: "not on weekends", rule: "tools.transfer.rules[0]", policyHash: hash)
/// refusal.text   // "Tollgate denied this call to `transfer`: not on weekends (policy rule `tools.transfer.rules[0]`)."
/// ```
public struct GateRefusal: Sendable, Hashable {
    /// `_meta.outcome`: `deny`, `limited`, `require_approval`, `error`, `policy_changed`, `approval_denied`,
    /// `approval_expired`, `pending_approval` or `cancelled`.
    public var outcome: String
    /// `_meta.rule`: the rule that decided (`catalog`, `policy`, `limits` or `database` when no rule did).
    public var rule: String
    /// `_meta.policy`: the policy's content hash (empty when no policy decided).
    public var policyHash: String
    /// What the agent reads.
    public var text: String
    /// `_meta.retryAfter`: seconds until a retry may succeed.
    public var retryAfter: Int?
    /// `_meta.approvalId`: the approval request the call waited on.
    public var approvalID: UUID?
    /// The result's `structuredContent`: a held call's status.
    public var structured: JSONValue?

    public init(
        outcome: String, rule: String, policyHash: String, text: String, retryAfter: Int? = nil, approvalID: UUID? = nil,
        structured: JSONValue? = nil
    ) {
        self.outcome = outcome
        self.rule = rule
        self.policyHash = policyHash
        self.text = text
        self.retryAfter = retryAfter
        self.approvalID = approvalID
        self.structured = structured
    }
}

// MARK: - Refusals of the decision

extension GateRefusal {
    /// The policy denied the call.
    public static func denied(tool: String, reason: String, rule: String, policyHash: String) -> GateRefusal {
        GateRefusal(
            outcome: "deny", rule: rule, policyHash: policyHash,
            text: "Tollgate denied this call to `\(tool)`: \(reason) (policy rule `\(rule)`).")
    }

    /// A limit of the policy is reached.
    public static func limited(tool: String, reason: String, retryAfter: Int, rule: String, policyHash: String) -> GateRefusal {
        GateRefusal(
            outcome: "limited", rule: rule, policyHash: policyHash,
            text: "Tollgate rate limit reached for `\(tool)`: \(reason). Retry after \(seconds(retryAfter)) (policy rule `\(rule)`).",
            retryAfter: retryAfter)
    }

    /// "1 second", "41 seconds".
    static func seconds(_ count: Int) -> String { count == 1 ? "1 second" : "\(count) seconds" }

    /// Why a call that needs approval is refused on a gateway without the approval workflow.
    public static let approvalUnavailableReason = "the approval workflow is not enabled on this gateway yet"

    /// The call needs approval, and the gateway has no approval workflow.
    public static func approvalUnavailable(tool: String, rule: String, policyHash: String) -> GateRefusal {
        GateRefusal(
            outcome: "require_approval", rule: rule, policyHash: policyHash,
            text: "Tollgate refused this call to `\(tool)`: it needs human approval (policy rule `\(rule)`), and \(approvalUnavailableReason).")
    }

    /// The upstream's tool list could not be had (`reason`: ``GateRuling/catalogUnavailable(tool:reason:policyHash:)``).
    public static func catalogUnavailable(tool: String, reason: String) -> GateRefusal {
        GateRefusal(outcome: "error", rule: "catalog", policyHash: "", text: "Tollgate refused this call to `\(tool)`: \(reason).")
    }

    /// Why every call to a server without a loaded policy is refused.
    public static func noPolicyReason(server: String) -> String {
        "no valid policy is loaded for the server `\(server)`, so every call to it is refused"
    }

    /// No valid policy is loaded for the server (fail closed).
    public static func noPolicy(server: String) -> GateRefusal {
        GateRefusal(outcome: "error", rule: "policy", policyHash: "", text: "Tollgate refused this call: \(noPolicyReason(server: server)).")
    }

    /// Why a call whose reservations lost every round to concurrent calls is refused.
    public static func contendedReason(tool: String) -> String {
        "the limits for `\(tool)` are contended; no room was left after several attempts"
    }

    /// Every round of deciding lost its reservations to concurrent calls: the window is as good as full.
    public static func contended(tool: String, policyHash: String) -> GateRefusal {
        GateRefusal(
            outcome: "limited", rule: "limits", policyHash: policyHash,
            text: "Tollgate rate limit reached for `\(tool)`: \(contendedReason(tool: tool)). Retry after 1 second.", retryAfter: 1)
    }

    /// The decision could not be recorded (the database is unavailable): nothing is forwarded unrecorded.
    public static func unrecorded(tool: String, policyHash: String) -> GateRefusal {
        GateRefusal(
            outcome: "error", rule: "database", policyHash: policyHash,
            text: "Tollgate refused this call to `\(tool)`: the decision could not be recorded in the audit log "
                + "(the database is unavailable), and no call is forwarded unrecorded. Try again later.")
    }
}

// MARK: - Refusals of a call that needs approval

extension GateRefusal {
    /// The rule a call refused for too many pending approval requests is recorded under.
    public static let maxPendingRule = "limits.max_pending_approvals"

    /// Why a call that needs approval is refused when its agent has `cap` requests pending.
    public static func tooManyPendingReason(agent: String, pending: Int, cap: Int) -> String {
        "the agent `\(agent)` already has \(pending) approval requests pending, the most one agent may have (\(maxPendingRule) is \(cap))"
    }

    /// The call needs approval and its agent has as many requests pending as it may: no request is made, nothing is
    /// forwarded, no reviewer is notified.
    public static func tooManyPending(tool: String, agent: String, pending: Int, cap: Int, policyHash: String) -> GateRefusal {
        GateRefusal(
            outcome: "limited", rule: maxPendingRule, policyHash: policyHash,
            text: "Tollgate refused this call to `\(tool)`: it needs human approval, and "
                + "\(tooManyPendingReason(agent: agent, pending: pending, cap: cap)). No request was made and nothing was forwarded. "
                + "Retry once reviewers have decided some of the pending requests or they have expired.")
    }
}

// MARK: - Refusals of a held call

extension GateRefusal {
    /// Approved, but the policy changed while the call was held: an approval is bound to its policy version.
    public static func policyChanged(tool: String, server: String, approval: Approval) -> GateRefusal {
        GateRefusal(
            outcome: "policy_changed", rule: approval.request.rule, policyHash: approval.request.policyHash,
            text: "Tollgate did not run this call to `\(tool)`: it was approved, but the policy for `\(server)` "
                + "changed while it was held, and an approval is bound to the policy version it was asked under. "
                + "Retry the call to ask again under the current policy.", approvalID: approval.id)
    }

    /// Approved, but a limit is reached as the call is released; the approval stands.
    public static func limitedOnRelease(
        tool: String, reason: String, retryAfter: Int, rule: String, policyHash: String, approvalID: UUID
    ) -> GateRefusal {
        GateRefusal(
            outcome: "limited", rule: rule, policyHash: policyHash,
            text: "Tollgate rate limit reached for `\(tool)`: \(reason). The approval still stands: retry the identical "
                + "call after \(retryAfter) seconds (policy rule `\(rule)`).", retryAfter: retryAfter, approvalID: approvalID)
    }

    /// Approved, but a reservation found no room as the call was released; the approval stands.
    public static func noRoomOnRelease(tool: String, counter: String, rule: String, policyHash: String) -> GateRefusal {
        GateRefusal(
            outcome: "limited", rule: rule, policyHash: policyHash,
            text: "Tollgate rate limit reached for `\(tool)`: the counter `\(counter)` has no room left in this window. "
                + "The approval still stands: retry the identical call later.", retryAfter: 1)
    }

    /// A reviewer denied the approval.
    public static func approvalDenied(tool: String, approval: Approval, reviewer: String, reason: String) -> GateRefusal {
        let id = approval.id.lowercasedString
        return GateRefusal(
            outcome: "approval_denied", rule: approval.request.rule, policyHash: approval.request.policyHash,
            text: "Tollgate did not run this call to `\(tool)`: \(reviewer) denied approval \(id): \(reason)", approvalID: approval.id,
            structured: ["status": "denied", "approvalId": .string(id), "reviewer": .string(reviewer), "reason": .string(reason)])
    }

    /// Nobody decided before the approval expired.
    public static func approvalExpired(tool: String, approval: Approval, at expiry: Date) -> GateRefusal {
        let id = approval.id.lowercasedString
        let at = EventCoding.timestamp(expiry)
        return GateRefusal(
            outcome: "approval_expired", rule: approval.request.rule, policyHash: approval.request.policyHash,
            text: "Tollgate did not run this call to `\(tool)`: approval \(id) expired at \(at) before anyone decided. Retry the call to ask again.",
            approvalID: approval.id, structured: ["status": "expired", "approvalId": .string(id), "expiredAt": .string(at)])
    }

    /// The hold ended with the approval still pending: the identical retry runs once it is approved.
    public static func pending(tool: String, approval: Approval) -> GateRefusal {
        let id = approval.id.lowercasedString
        let expires = EventCoding.timestamp(approval.request.expiresAt)
        let retry = "Once it is approved, retry this identical call (same tool and arguments) and it will run, once."
        return GateRefusal(
            outcome: "pending_approval", rule: approval.request.rule, policyHash: approval.request.policyHash,
            text: "This call to `\(tool)` is waiting for human approval (approval \(id), \(approval.grants.count) of "
                + "\(approval.request.quorum) approvals so far). It expires at \(expires). \(retry)", approvalID: approval.id,
            structured: [
                "status": "pending_approval", "approvalId": .string(id), "expiresAt": .string(expires),
                "approvals": .number(Double(approval.grants.count)), "quorum": .number(Double(approval.request.quorum)), "retry": .string(retry),
            ])
    }

    /// The agent cancelled the call while it waited.
    public static func cancelled(tool: String, approval: Approval) -> GateRefusal {
        GateRefusal(
            outcome: "cancelled", rule: approval.request.rule, policyHash: approval.request.policyHash,
            text: "The call to `\(tool)` was cancelled while it waited for approval \(approval.id.lowercasedString).", approvalID: approval.id)
    }
}
