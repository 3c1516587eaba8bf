import Foundation
import Testing

@testable import TollgateCore

/// The gate's ruling as a table: a policy, a call and the counts it finds give the action, what the log records, and
/// the words the agent reads. No database: the gate in `tollgate serve` only carries these out.
@Suite("The gate's ruling: policy + counts → action, record and refusal")
struct GateRulingTests {
    static let policy = """
        version: '1'
        default: deny
        hide: [secret_*]
        tools:
          read_file: allow
          transfer:
            limits: [{counter: transfers, window: hour, max: 3}]
          slide:
            limits: [{counter: s, window: minute, max: 10, algorithm: sliding}]
          wire:
            action: require_approval
            reason: money leaves the company
            approval: {timeout: 2h, hold: 30s, quorum: 2, reviewers: [alice, bob]}
            limits: [{counter: wires, window: day, max: 2}]
          drop: {action: deny, reason: never on a Friday}
        """

    /// One row: the call (`tool`), the count every one of its windows holds, whether the gateway has the approval
    /// workflow; and what the ruling must be.
    struct Row: Sendable, CustomStringConvertible {
        var tool: String
        var counts: Double = 0
        var approvals = true
        var decision: String
        var rule: String
        var action: String
        var reason: String?
        var retryAfter: Int?
        var reserves: Double = 0
        var text: String?

        var description: String { "\(tool) at \(counts)\(approvals ? "" : " without approvals") → \(decision)" }
    }

    static let rows: [Row] = [
        Row(tool: "read_file", decision: "allow", rule: "tools.read_file", action: "forward"),
        Row(tool: "transfer", counts: 2, decision: "allow", rule: "tools.transfer", action: "forward", reserves: 1),
        Row(
            tool: "transfer", counts: 3, decision: "limited", rule: "tools.transfer.limits[0]", action: "refuse",
            reason: "limit reached on `transfers`: at most 3 per hour in total", retryAfter: 2800,
            text: "Tollgate rate limit reached for `transfer`: limit reached on `transfers`: at most 3 per hour in total. "
                + "Retry after 2800 seconds (policy rule `tools.transfer.limits[0]`)."),
        Row(tool: "slide", counts: 4, decision: "allow", rule: "tools.slide", action: "forward", reserves: 1),
        Row(
            tool: "drop", decision: "deny", rule: "tools.drop", action: "refuse", reason: "never on a Friday",
            text: "Tollgate denied this call to `drop`: never on a Friday (policy rule `tools.drop`)."),
        Row(
            tool: "unlisted", decision: "deny", rule: "default", action: "refuse", reason: "the policy does not allow this tool (default: deny)",
            text: "Tollgate denied this call to `unlisted`: the policy does not allow this tool (default: deny) (policy rule `default`)."),
        Row(tool: "wire", decision: "require_approval", rule: "tools.wire", action: "hold", reason: "money leaves the company"),
        Row(
            tool: "wire", approvals: false, decision: "require_approval", rule: "tools.wire", action: "refuse",
            reason: "the approval workflow is not enabled on this gateway yet",
            text: "Tollgate refused this call to `wire`: it needs human approval (policy rule `tools.wire`), "
                + "and the approval workflow is not enabled on this gateway yet."),
        Row(
            tool: "wire", counts: 2, decision: "limited", rule: "tools.wire.limits[0]", action: "refuse",
            reason: "limit reached on `wires`: at most 2 per day in total", retryAfter: 6400,
            text: "Tollgate rate limit reached for `wire`: limit reached on `wires`: at most 2 per day in total. "
                + "Retry after 6400 seconds (policy rule `tools.wire.limits[0]`)."),
        Row(tool: "secret_keys", decision: "hidden", rule: "hide[0]", action: "unknownTool"),
    ]

    @Test(arguments: rows)
    func aDecisionIsRuledAsTheTableSays(_ row: Row) throws {
        let policy = try loadPolicy(Self.policy)
        let call = makeCall(row.tool)
        let counts = Dictionary(uniqueKeysWithValues: policy.counterKeys(for: call).map { ($0, row.counts) })
        let decision = policy.evaluate(call, counts: counts)
        let ruling = GateRuling(decision, tool: row.tool, approvals: row.approvals)

        #expect(ruling.decision == row.decision)
        #expect(ruling.rule == row.rule)
        #expect(ruling.policyHash == policy.contentHash)
        #expect(ruling.reason == row.reason)
        #expect(ruling.retryAfter == row.retryAfter)
        #expect(ruling.reservations.map(\.amount).reduce(0, +) == row.reserves, "only an allowed call records reservations")
        switch ruling.action {
        case .forward:
            #expect(row.action == "forward")
            #expect(ruling.reservations == decision.reservations)
        case .refuse(let refusal):
            #expect(row.action == "refuse")
            #expect(refusal.text == row.text)
            #expect(refusal.outcome == row.decision)
            #expect(refusal.rule == row.rule && refusal.policyHash == policy.contentHash)
            #expect(refusal.retryAfter == row.retryAfter)
            #expect(refusal.approvalID == nil && refusal.structured == nil)
        case .hold(let requirement, let reservations):
            #expect(row.action == "hold")
            #expect(requirement == ApprovalRequirement(timeout: 7200, hold: 30, quorum: 2, reviewers: ["alice", "bob"], reason: row.reason))
            // The held decision records none; they are made when the call is released.
            #expect(reservations == decision.reservations && !reservations.isEmpty)
        case .unknownTool:
            #expect(row.action == "unknownTool")
        }
    }

    /// The refusals no rule made: recorded with their reason and the rule's place taken by what failed.
    @Test func refusalsWithoutARule() {
        let catalog = GateRuling.catalogUnavailable(tool: "t", reason: "the list timed out", policyHash: "sha256:ab")
        #expect(catalog.decision == "error" && catalog.rule == "catalog" && catalog.policyHash == "sha256:ab")
        #expect(catalog.reason == "the list timed out")
        #expect(
            catalog.action
                == .refuse(
                    GateRefusal(outcome: "error", rule: "catalog", policyHash: "", text: "Tollgate refused this call to `t`: the list timed out.")))

        let none = GateRuling.noPolicy(server: "bank")
        #expect(none.decision == "error" && none.rule == "policy" && none.policyHash == "")
        #expect(none.reason == "no valid policy is loaded for the server `bank`, so every call to it is refused")
        guard case .refuse(let refusal) = none.action else { Issue.record("not a refusal"); return }
        #expect(refusal.text == "Tollgate refused this call: no valid policy is loaded for the server `bank`, so every call to it is refused.")

        let contended = GateRuling.contended(tool: "transfer", policyHash: "sha256:cd")
        #expect(contended.decision == "limited" && contended.rule == "limits" && contended.retryAfter == nil)
        guard case .refuse(let busy) = contended.action else { Issue.record("not a refusal"); return }
        #expect(busy.retryAfter == 1 && busy.policyHash == "sha256:cd")
        #expect(
            busy.text == "Tollgate rate limit reached for `transfer`: the limits for `transfer` are contended; no room was left after several "
                + "attempts. Retry after 1 second.")
        #expect(GateRefusal.unrecorded(tool: "t", policyHash: "h").rule == "database")
    }

    /// A call within fixed windows is decided without its counts; anything else must read them.
    @Test func theFirstGuessIsOnlyAFixedWindowAllow() throws {
        let policy = try loadPolicy(Self.policy)
        #expect(policy.firstGuess(makeCall("transfer")) == policy.evaluate(makeCall("transfer"), counts: [:]))
        #expect(policy.firstGuess(makeCall("slide")) == nil, "a sliding window's ceiling depends on the counts")
        #expect(policy.firstGuess(makeCall("wire")) == nil)
        #expect(policy.firstGuess(makeCall("drop")) == nil)
    }

    /// A held call's refusals name the approval in lowercase, in the text and the structured status.
    @Test func heldCallRefusalsNameTheApproval() {
        let id = UUID(uuidString: "9AFEB4D5-0C2E-4F7A-8D3B-5E6F7A8B9C0D")!
        let at = Date(timeIntervalSince1970: 1_764_655_561)
        var approval = Approval(
            ApprovalRequested(
                approvalID: id, callID: UUID(), agent: "a", grant: "g", session: "s", server: "bank", tool: "wire", arguments: nil,
                argumentsHash: "h", argumentsStorage: "hash", policyHash: "sha256:ef", rule: "tools.wire", reason: nil, quorum: 2, reviewers: [],
                category: nil, requestedAt: at, expiresAt: at.addingTimeInterval(60)))
        if case .success(let events) = approval.grant(by: "alice", comment: nil, now: at) { events.forEach { approval.apply($0) } }

        let pending = GateRefusal.pending(tool: "wire", approval: approval)
        #expect(pending.outcome == "pending_approval" && pending.approvalID == id && pending.rule == "tools.wire")
        #expect(pending.text.contains("approval 9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d, 1 of 2 approvals so far"))
        #expect(pending.structured?["approvalId"]?.stringValue == "9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d")
        let denied = GateRefusal.approvalDenied(tool: "wire", approval: approval, reviewer: "bob", reason: "no")
        #expect(denied.text == "Tollgate did not run this call to `wire`: bob denied approval 9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d: no")
        let expired = GateRefusal.approvalExpired(tool: "wire", approval: approval, at: at)
        #expect(expired.structured?["expiredAt"]?.stringValue == "2025-12-02T06:06:01.000Z")
        #expect(GateRefusal.cancelled(tool: "wire", approval: approval).text.hasSuffix("approval 9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d."))
    }
}
