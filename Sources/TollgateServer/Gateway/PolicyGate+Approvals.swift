import Foundation
import TollgateCore
import TollgateMCP

extension PolicyGate {
    /// Holds a call that needs approval: makes (or joins, or uses) the approval request with the call's decision in
    /// one transaction, then waits for a decision until the rule's `hold` is over.
    ///
    /// Approved: the approval is used (once: `ApprovalConsumed`, with the call's counter reservations) and the call
    /// is forwarded. Denied or expired: an `isError` result saying so. Still pending when the hold ends: an `isError`
    /// result with `structuredContent` `{status: pending_approval, approvalId, expiresAt, ...}`; the identical call,
    /// retried once approved, runs.
    func hold(
        _ request: ToolCallRequest, callID: UUID, decision: PolicyDecision, requirement: ApprovalRequirement, event: ToolCallDecided,
        desk: ApprovalDesk
    ) async throws -> ToolCallVerdict {
        let identity = request.identity
        let mode = (storage[identity.server] ?? ArgumentRedaction()).storage(for: request.tool)
        let started = Date()
        // Past `limits.max_held_calls` (or while stopping) the request is still made, but the call is not held: its
        // agent hears at once that it is pending, and the identical retry runs once it is approved.
        let holding = desk.waiters.enter()
        defer { if holding { desk.waiters.leave() } }
        var held = HeldCall(startedAt: started, hold: holding ? TimeInterval(requirement.hold) : 0, progressEvery: desk.progressEvery)
        var call: ToolCallDecided? = event
        for _ in 0..<8 {
            let now = Date()
            let requested = ApprovalRequested(
                approvalID: UUID.random(), callID: callID, agent: identity.agent, grant: identity.grant, session: identity.session,
                server: identity.server, tool: request.tool, arguments: mode.stored(request.arguments), argumentsHash: event.argumentsHash,
                argumentsStorage: mode.rawValue, policyHash: decision.policyHash, rule: decision.rule, reason: requirement.reason,
                quorum: requirement.quorum, reviewers: requirement.reviewers, category: event.category, requestedAt: now,
                expiresAt: now.addingTimeInterval(TimeInterval(requirement.timeout)))
            var seen = desk.waiters.generation
            let admission: ApprovalBook.Admission
            do {
                admission = try await desk.book.admit(call: call, request: requested, reservations: decision.reservations, now: now)
            } catch let refusal as ToolCallRecorder.NotAdmitted {
                if let call { try await recorder.record(call) }
                return limitedOnRelease(request, callID: callID, decision: decision, key: refusal.key)
            }
            call = nil
            var approval: Approval
            switch admission {
            case .released(let used):
                logger.info(
                    "an identical call used an approved request",
                    metadata: ["approval": "\(used.id)", "call": "\(callID)", "tool": "\(request.tool)"])
                metrics.approvalOutcome("released")
                return .forward(ToolCallTicket(callID: callID, identity: identity, tool: request.tool, reservations: decision.reservations))
            case .created(let made):
                logger.notice(
                    "call held for approval",
                    metadata: ["approval": "\(made.id)", "call": "\(callID)", "tool": "\(request.tool)", "rule": "\(decision.rule)"])
                approval = made
            case .joined(let pending):
                approval = pending
            }
            waiting: while true {
                switch held.observe(approval, now: Date()) {
                case .run:
                    let reservations: [CounterReservation]
                    switch try await reservationsOnRelease(request, approval: approval, callID: callID) {
                    case .refused(let verdict): return verdict
                    case .reservations(let made): reservations = made
                    }
                    let outcome: ApprovalBook.Decided
                    do {
                        outcome = try await desk.book.decide(approval.id, reservations: reservations) {
                            $0.consume(by: callID, reservations: reservations, now: Date())
                        }
                    } catch let refusal as ToolCallRecorder.NotAdmitted {
                        return limitedOnRelease(request, callID: callID, decision: decision, key: refusal.key)
                    }
                    switch outcome {
                    case .decided:
                        metrics.approvalOutcome("released")
                        return .forward(ToolCallTicket(callID: callID, identity: identity, tool: request.tool, reservations: reservations))
                    case .refused(.alreadyConsumed, _):
                        break waiting
                    case .refused(_, let current):
                        approval = current
                    case .notFound:
                        throw ApprovalBookError.missingRow(approval.id)
                    }
                case .refuse(let refusal):
                    return refused(request, callID: callID, approval: approval, refusal: refusal)
                case .expire:
                    seen = desk.waiters.generation
                    switch try await desk.book.decide(approval.id, { .success($0.expire(now: Date())) }) {
                    case .decided(let current), .refused(_, let current): approval = current
                    case .notFound: throw ApprovalBookError.missingRow(approval.id)
                    }
                case .pending:
                    return pendingResult(request, callID: callID, approval: approval)
                case .requestAgain:
                    break waiting
                case .wait(let until, let progress):
                    if let progress { request.progress?(progress) }
                    if let newer = await desk.waiters.wait(for: approval.id, after: approval.version, seen: seen, until: until) {
                        seen = desk.waiters.generation
                        approval = newer
                    } else {
                        if Task.isCancelled { return cancelled(request, callID: callID, approval: approval) }
                        if desk.waiters.isStopped { return pendingResult(request, callID: callID, approval: approval) }
                        seen = desk.waiters.generation
                        guard let current = try await desk.book.load(approval.id) else { throw ApprovalBookError.missingRow(approval.id) }
                        approval = current
                    }
                }
            }
            // The approval was used by an identical call first: this call asks anew (its decision is recorded).
        }
        throw ApprovalBookError.contended(callID)
    }

    /// The counter reservations of a held call as it is released, under the limits as they stand now; or the verdict
    /// when the call can no longer run (the policy changed while it was held, or its limits are reached).
    private func reservationsOnRelease(_ request: ToolCallRequest, approval: Approval, callID: UUID) async throws -> Release {
        let identity = request.identity
        guard let policy = policies.policy(for: identity.server), policy.contentHash == approval.request.policyHash else {
            return .refused(
                refuse(
                    callID: callID, outcome: "policy_changed", rule: approval.request.rule, policyHash: approval.request.policyHash,
                    text: "Tollgate did not run this call to `\(request.tool)`: it was approved, but the policy for `\(identity.server)` "
                        + "changed while it was held, and an approval is bound to the policy version it was asked under. "
                        + "Retry the call to ask again under the current policy.", approvalID: approval.id))
        }
        let call = PolicyCall(
            agent: identity.agent, grant: identity.grant, session: identity.session, server: identity.server, tool: request.tool,
            arguments: request.arguments, category: approval.request.category.flatMap(RiskCategory.init(rawValue:)), now: Date())
        let decision = policy.evaluate(call, counts: try await recorder.counts(policy.counterKeys(for: call)))
        switch decision.outcome {
        case .limited(let retryAfter, let reason):
            return .refused(
                refuse(
                    callID: callID, outcome: "limited", rule: decision.rule, policyHash: decision.policyHash,
                    text: "Tollgate rate limit reached for `\(request.tool)`: \(reason). The approval still stands: retry the identical "
                        + "call after \(retryAfter) seconds (policy rule `\(decision.rule)`).", retryAfter: retryAfter, approvalID: approval.id))
        default:
            return .reservations(decision.reservations)
        }
    }

    private enum Release {
        case reservations([CounterReservation])
        case refused(ToolCallVerdict)
    }

    private func limitedOnRelease(_ request: ToolCallRequest, callID: UUID, decision: PolicyDecision, key: CounterKey) -> ToolCallVerdict {
        refuse(
            callID: callID, outcome: "limited", rule: decision.rule, policyHash: decision.policyHash,
            text: "Tollgate rate limit reached for `\(request.tool)`: the counter `\(key.counter)` has no room left in this window. "
                + "The approval still stands: retry the identical call later.", retryAfter: 1)
    }

    private func refused(_ request: ToolCallRequest, callID: UUID, approval: Approval, refusal: HeldCall.Refusal) -> ToolCallVerdict {
        let id = approval.id.uuidString.lowercased()
        switch refusal {
        case .denied(let reviewer, let reason):
            metrics.approvalOutcome("denied")
            return refuse(
                callID: callID, outcome: "approval_denied", rule: approval.request.rule, policyHash: approval.request.policyHash,
                text: "Tollgate did not run this call to `\(request.tool)`: \(reviewer) denied approval \(id): \(reason)", approvalID: approval.id,
                structured: ["status": "denied", "approvalId": .string(id), "reviewer": .string(reviewer), "reason": .string(reason)])
        case .expired(let at):
            metrics.approvalOutcome("expired")
            return refuse(
                callID: callID, outcome: "approval_expired", rule: approval.request.rule, policyHash: approval.request.policyHash,
                text: "Tollgate did not run this call to `\(request.tool)`: approval \(id) expired at \(EventCoding.timestamp(at)) "
                    + "before anyone decided. Retry the call to ask again.", approvalID: approval.id,
                structured: ["status": "expired", "approvalId": .string(id), "expiredAt": .string(EventCoding.timestamp(at))])
        }
    }

    private func pendingResult(_ request: ToolCallRequest, callID: UUID, approval: Approval) -> ToolCallVerdict {
        metrics.approvalOutcome("pending")
        let id = approval.id.uuidString.lowercased()
        let expires = EventCoding.timestamp(approval.request.expiresAt)
        let retry = "Once it is approved, retry this identical call (same tool and arguments) and it will run, once."
        return refuse(
            callID: callID, outcome: "pending_approval", rule: approval.request.rule, policyHash: approval.request.policyHash,
            text: "This call to `\(request.tool)` is waiting for human approval (approval \(id), \(approval.grants.count) of "
                + "\(approval.request.quorum) approvals so far). It expires at \(expires). \(retry)", approvalID: approval.id,
            structured: [
                "status": "pending_approval", "approvalId": .string(id), "expiresAt": .string(expires),
                "approvals": .number(Double(approval.grants.count)), "quorum": .number(Double(approval.request.quorum)), "retry": .string(retry),
            ])
    }

    private func cancelled(_ request: ToolCallRequest, callID: UUID, approval: Approval) -> ToolCallVerdict {
        refuse(
            callID: callID, outcome: "cancelled", rule: approval.request.rule, policyHash: approval.request.policyHash,
            text: "The call to `\(request.tool)` was cancelled while it waited for approval \(approval.id.uuidString.lowercased()).",
            approvalID: approval.id)
    }
}
