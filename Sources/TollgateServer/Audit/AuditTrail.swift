import Foundation
import TollgateCore
import TollgatePostgres

/// The history of tool calls, straight from the log: each call's decision (policy version and rule), the approval it
/// went through (reviewers, outcome) and how it ended. What `tollgate audit replay` prints and `audit what-if` replays.
///
/// ```swift
/// let calls = try await AuditTrail.read(store: store, filter: .init(agent: "ci-bot"))
/// ```
public enum AuditTrail {
    public struct Filter: Sendable {
        public var since: Date?
        public var until: Date?
        public var agent: String?
        public var server: String?
        public var tool: String?

        public init(since: Date? = nil, until: Date? = nil, agent: String? = nil, server: String? = nil, tool: String? = nil) {
            self.since = since
            self.until = until
            self.agent = agent
            self.server = server
            self.tool = tool
        }

        func admits(_ decided: ToolCallDecided) -> Bool {
            if let since, decided.decidedAt < since { return false }
            if let until, decided.decidedAt >= until { return false }
            if let agent, decided.agent != agent { return false }
            if let server, decided.server != server { return false }
            if let tool, decided.tool != tool { return false }
            return true
        }
    }

    /// One call as the log tells it.
    public struct Call: Sendable {
        public var decided: ToolCallDecided
        /// The log position of the decision.
        public var position: Int64
        public var completed: ToolCallCompleted?
        /// The approval request the call made, joined or used, folded from its events.
        public var approval: Approval?

        /// How the call ended for the agent: the upstream's outcome when it ran, else why it did not.
        public var outcome: String {
            if let completed { return completed.outcome }
            switch decided.decision {
            case "allow": return "no_outcome"
            case "require_approval":
                guard let approval else { return "held" }
                if approval.consumption?.callID == decided.callID { return "released" }
                switch approval.status {
                case .pending: return "pending_approval"
                case .approved: return approval.consumption == nil ? "approved_unused" : "approval_used_by_another_call"
                case .denied: return "approval_denied"
                case .expired: return "approval_expired"
                }
            default: return "refused"
            }
        }

        public var json: JSONValue {
            let d = decided
            var object: [String: JSONValue] = [
                "call_id": .string(d.callID.lowercasedString), "position": .number(Double(position)),
                "decided_at": .string(EventCoding.timestamp(d.decidedAt)), "agent": .string(d.agent), "grant": .string(d.grant),
                "session": .string(d.session), "server": .string(d.server), "tool": .string(d.tool), "decision": .string(d.decision),
                "rule": .string(d.rule), "policy_hash": .string(d.policyHash), "arguments_hash": .string(d.argumentsHash),
                "arguments": d.arguments ?? .null, "arguments_storage": .string(d.argumentsStorage),
                "reason": d.reason.map { .string($0) } ?? .null, "outcome": .string(outcome),
            ]
            if let summary = d.argumentsSummary {
                object["arguments_summary"] = [
                    "bytes": .number(Double(summary.bytes)), "keys": .array(summary.keys.map { .string($0) }),
                    "keys_omitted": .number(Double(summary.keysOmitted)),
                ]
            }
            if let completed {
                object["duration_ms"] = .number(completed.durationMillis)
                object["completed_at"] = .string(EventCoding.timestamp(completed.completedAt))
            }
            if let approval {
                object["approval"] = [
                    "id": .string(approval.id.lowercasedString), "status": .string(approval.status.rawValue),
                    "approved_by": .array(approval.grants.map { .string($0.reviewer) }),
                    "denied_by": approval.denial.map { .string($0.reviewer) } ?? .null,
                    "deny_reason": approval.denial.map { .string($0.reason) } ?? .null,
                ]
            }
            return .object(object)
        }
    }

    /// Reads the whole log in global order and returns the calls the filter admits, in the order they were decided.
    public static func read(store: EventStore, filter: Filter, pageSize: Int = 5000) async throws -> [Call] {
        var calls: [Call] = []
        var index: [UUID: Int] = [:]
        var approvals: [UUID: Approval] = [:]
        var position = LogPosition.start
        while true {
            let page = try await store.readAll(after: position, limit: pageSize)
            guard let last = page.last else { break }
            position = last.logPosition
            for event in page {
                switch event.type {
                case ToolCallDecided.type:
                    let decided = try EventCoding.decode(ToolCallDecided.self, from: event.data)
                    guard filter.admits(decided) else { continue }
                    index[decided.callID] = calls.count
                    calls.append(Call(decided: decided, position: event.position))
                case ToolCallCompleted.type:
                    let completed = try EventCoding.decode(ToolCallCompleted.self, from: event.data)
                    if let at = index[completed.callID] { calls[at].completed = completed }
                default:
                    guard ApprovalEvent.types.contains(event.type), let approvalEvent = try ApprovalEvent.decode(type: event.type, data: event.data)
                    else { continue }
                    if case .requested(let requested) = approvalEvent {
                        approvals[requested.approvalID] = Approval(requested)
                    } else {
                        approvals[approvalEvent.approvalID]?.apply(approvalEvent)
                    }
                }
            }
        }
        for at in calls.indices {
            if let id = calls[at].decided.approvalID { calls[at].approval = approvals[id] }
        }
        return calls
    }
}

/// `tollgate audit what-if`: the recorded calls decided again by another policy, in their original order and at their
/// original times, with rate windows counted afresh as the new policy would have counted them.
public enum WhatIf {
    public struct Change: Sendable {
        public var call: AuditTrail.Call
        public var after: String
        public var afterRule: String
        public var afterReason: String?
        /// Conditions were evaluated without the arguments (the log kept only their hash or their keys).
        public var withoutArguments: Bool

        public var json: JSONValue {
            [
                "call_id": .string(call.decided.callID.lowercasedString), "decided_at": .string(EventCoding.timestamp(call.decided.decidedAt)),
                "agent": .string(call.decided.agent), "tool": .string(call.decided.tool), "before": .string(call.decided.decision),
                "before_rule": .string(call.decided.rule), "after": .string(after), "after_rule": .string(afterRule),
                "after_reason": afterReason.map { .string($0) } ?? .null, "without_arguments": .bool(withoutArguments),
            ]
        }
    }

    public struct Result: Sendable {
        public var replayed = 0
        public var changes: [Change] = []
        /// Calls whose arguments the log did not keep in full.
        public var withoutArguments = 0
        /// before → after → count, for the summary.
        public var transitions: [String: Int] = [:]
    }

    public static func run(_ calls: [AuditTrail.Call], policy: CompiledPolicy) -> Result {
        var result = Result()
        var counts: [CounterKey: Double] = [:]
        for call in calls {
            let d = call.decided
            // Refusals the gateway made without the policy (no policy loaded, database down, an agent's pending approval
            // requests at their cap) are not policy decisions.
            guard d.decision != "error", d.rule != GateRefusal.maxPendingRule else { continue }
            let full = d.argumentsStorage == "full" && d.arguments != nil
            if !full { result.withoutArguments += 1 }
            let input = PolicyCall(
                agent: d.agent, grant: d.grant, session: d.session, server: d.server, tool: d.tool, arguments: full ? d.arguments! : .object([:]),
                category: d.category.flatMap(RiskCategory.init(rawValue:)), now: d.decidedAt)
            let keys = policy.counterKeys(for: input)
            let decision = policy.evaluate(input, counts: Dictionary(uniqueKeysWithValues: keys.map { ($0, counts[$0] ?? 0) }))
            switch decision.outcome {
            case .allow, .requireApproval:
                for reservation in decision.reservations { counts[reservation.key, default: 0] += reservation.amount }
            default: break
            }
            result.replayed += 1
            let after = decision.outcome.name
            guard after != d.decision else { continue }
            var reason: String?
            switch decision.outcome {
            case .deny(let text): reason = text
            case .limited(_, let text): reason = text
            case .requireApproval(let requirement): reason = requirement.reason
            default: break
            }
            result.transitions["\(d.decision) -> \(after)", default: 0] += 1
            result.changes.append(Change(call: call, after: after, afterRule: decision.rule, afterReason: reason, withoutArguments: !full))
        }
        return result
    }
}
