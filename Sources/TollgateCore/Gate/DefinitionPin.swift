/// How the definition a call was decided on stands against the one accepted for its tool (tool definition pinning,
/// docs/inventory.md): accepted, changed since, or never accepted.
///
/// ```swift
/// let pin = DefinitionPin(tool: "get_weather", hash: seen, accepted: (acceptedHash, acceptedJSON), seen: seenJSON)
/// pin.status                                   // .changed
/// pin.summary                                  // "its definition changed since the one accepted (description, annotations.destructiveHint)"
/// GateRuling(decision, ...).pinned(pin, on: .hold, approvals: true)   // held for a reviewer to accept it
/// ```
public struct DefinitionPin: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// The call's definition is the accepted one.
        case accepted
        /// Another definition of the tool was accepted.
        case changed
        /// No definition of the tool was accepted (a tool added after the server's baseline, or a first listing held).
        case new
    }

    public var status: Status
    /// The hash of the definition the call was decided on.
    public var hash: String
    /// What a reviewer is shown: the accepted hash and what differs from it.
    public var review: ApprovalRequested.DefinitionChangeReview

    /// `accepted`: the hash and definition accepted for the tool (nil: none); `seen`: the call's definition, parsed
    /// (nil when it was too large to keep, or not known).
    public init(hash: String, accepted: (hash: String, definition: JSONValue?)?, seen: JSONValue?) {
        self.hash = hash
        guard let accepted else {
            status = .new
            review = .init(acceptedHash: nil, changes: [], changesOmitted: 0, note: "no definition of this tool has been accepted")
            return
        }
        guard accepted.hash != hash else {
            status = .accepted
            review = .init(acceptedHash: accepted.hash, changes: [], changesOmitted: 0, note: nil)
            return
        }
        status = .changed
        if let old = accepted.definition, let new = seen {
            let diff = ToolDefinition.diff(old: old, new: new)
            review = .init(acceptedHash: accepted.hash, changes: diff.changes, changesOmitted: diff.omitted, note: nil)
        } else {
            review = .init(
                acceptedHash: accepted.hash, changes: [], changesOmitted: 0,
                note: "one of the two definitions is over \(ToolDefinition.maxDefinitionBytes) bytes and is kept by its hash only: no diff")
        }
    }

    /// The pin of a call whose definition is known to be the accepted one (no diff to show).
    public static func accepted(hash: String) -> DefinitionPin {
        DefinitionPin(hash: hash, accepted: (hash, nil), seen: nil)
    }

    /// The change in words, for the agent, the log and reviewers: what differs, and the two hashes (first 12 digits).
    public var summary: String {
        switch status {
        case .accepted:
            return "its definition is the one accepted"
        case .new:
            return "no definition of this tool has been accepted yet (it appeared after the server's first listing, "
                + "or the first listing is held for review); definition \(Self.short(hash))"
        case .changed:
            let members = review.changes.map(\.member)
            let named =
                members.isEmpty
                ? "" : " (\(members.prefix(8).joined(separator: ", "))\(members.count > 8 || review.changesOmitted > 0 ? ", …" : ""))"
            return "its definition changed since the one accepted\(named): \(Self.short(review.acceptedHash ?? "")) → \(Self.short(hash))"
        }
    }

    /// The summary as a reviewer reads it beside the call: "the tool's definition changed …".
    public var reviewText: String {
        status == .changed ? "the tool's " + summary.dropFirst("its ".count) : summary
    }

    static func short(_ hash: String) -> String { String(hash.prefix(12)) }
}

extension GateRuling {
    /// The rule a decision changed by definition pinning is recorded under.
    public static let definitionRule = "on_definition_change"

    /// This ruling once the call's definition pin is applied under the server's `on_definition_change`: a call the
    /// policy lets through (or holds) whose definition is not the accepted one is held for a reviewer to accept it
    /// (`hold`), refused (`deny`), or left as it is (`allow`, only recorded). A call the policy refuses stays refused:
    /// nobody is asked to review a definition for a call that would not run anyway.
    public func pinned(_ pin: DefinitionPin, on action: Policy.DefinitionChangeAction, tool: String, approvals: Bool) -> GateRuling {
        guard pin.status != .accepted, action != .allow else { return self }
        var ruling = self
        switch self.action {
        case .refuse, .unknownTool:
            return self
        case .forward, .hold:
            break
        }
        let rule = Self.definitionRule
        if action == .deny || !approvals {
            let refusal = GateRefusal.definitionNotAccepted(tool: tool, summary: pin.summary, held: action == .hold, policyHash: policyHash)
            ruling.action = .refuse(refusal)
            ruling.decision = action == .deny ? "deny" : "require_approval"
            ruling.reason = pin.summary
            ruling.rule = rule
            ruling.reservations = []
            return ruling
        }
        switch self.action {
        case .hold(var requirement, let reservations):
            requirement.reason = [requirement.reason, pin.reviewText].compactMap { $0 }.joined(separator: "; ")
            ruling.action = .hold(requirement, reservations: reservations)
            ruling.reason = requirement.reason
        default:
            let requirement = ApprovalRequirement(
                timeout: ApprovalOptions.defaultTimeout, hold: ApprovalOptions.defaultHold, quorum: 1, reviewers: [],
                reason: pin.reviewText + "; approving accepts this definition")
            ruling.action = .hold(requirement, reservations: reservations)
            ruling.decision = "require_approval"
            ruling.reason = requirement.reason
            ruling.rule = rule
            ruling.reservations = []
        }
        return ruling
    }
}

extension GateRuling {
    /// The tool's accepted definition could not be read (the database is unavailable, or the listing was not recorded in
    /// time): refused, since it might be a changed definition (fail closed).
    public static func definitionUnknown(tool: String, reason: String, policyHash: String) -> GateRuling {
        GateRuling(
            action: .refuse(
                GateRefusal(
                    outcome: "error", rule: definitionRule, policyHash: policyHash,
                    text: "Tollgate refused this call to `\(tool)`: the tool's accepted definition could not be read (\(reason)), and a call "
                        + "is never run on a definition that may not be the accepted one. Nothing was sent to the server; try again later.")),
            decision: "error", reason: reason, retryAfter: nil, rule: definitionRule, policyHash: policyHash, reservations: [])
    }
}

extension GateRefusal {
    /// The call's tool definition is not the accepted one, and the server's policy says `deny` (or `hold` on a gateway
    /// without the approval workflow).
    public static func definitionNotAccepted(tool: String, summary: String, held: Bool, policyHash: String) -> GateRefusal {
        GateRefusal(
            outcome: held ? "require_approval" : "deny", rule: GateRuling.definitionRule, policyHash: policyHash,
            text: "Tollgate refused this call to `\(tool)`: \(summary), and the server's policy (on_definition_change: "
                + "\(held ? "hold" : "deny")) \(held ? "holds such calls for review, but " + approvalUnavailableReason : "refuses such calls"). "
                + "Nothing was sent to the server; a reviewer must accept the new definition first.")
    }

    /// Approved, but the tool's definition changed while the call was held: an approval covers the definition it was
    /// asked under only.
    public static func definitionChangedWhileHeld(tool: String, approval: Approval, current: String) -> GateRefusal {
        GateRefusal(
            outcome: "definition_changed", rule: approval.request.rule, policyHash: approval.request.policyHash,
            text: "Tollgate did not run this call to `\(tool)`: it was approved, but the tool's definition changed while it was held "
                + "(\(DefinitionPin.short(approval.request.definitionHash ?? "")) → \(DefinitionPin.short(current))), and an approval "
                + "covers the definition it was asked under only. Nothing was sent to the server; call again to ask for a new approval.",
            approvalID: approval.id)
    }
}
