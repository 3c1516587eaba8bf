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
        _ request: ToolCallRequest, ruling: GateRuling, requirement: ApprovalRequirement, reservations: [CounterReservation],
        event: ToolCallDecided, pin: DefinitionPin? = nil, desk: ApprovalDesk
    ) async throws -> ToolCallVerdict {
        let identity = request.identity
        let callID = event.callID
        let started = Date()
        // Past `limits.max_held_calls` (or while stopping) the request is still made, but the call is not held: its
        // agent hears at once that it is pending, and the identical retry runs once it is approved.
        let holding = desk.waiters.enter()
        defer { if holding { desk.waiters.leave() } }
        var held = HeldCall(startedAt: started, hold: holding ? TimeInterval(requirement.hold) : 0, progressEvery: desk.progressEvery)
        var call: ToolCallDecided? = event
        // For reviewers: how much harm a wrong call could do (classified here, off the path of calls that are not held).
        let riskLevel = request.descriptor.map { RiskClassifier().classify($0).level.rawValue }
        for _ in 0..<8 {
            let now = Date()
            var requested = ApprovalRequested(
                approvalID: UUID.random(), callID: callID, agent: identity.agent, grant: identity.grant, session: identity.session,
                server: identity.server, tool: request.tool, arguments: event.arguments, argumentsHash: event.argumentsHash,
                argumentsStorage: event.argumentsStorage, policyHash: ruling.policyHash, rule: ruling.rule, reason: requirement.reason,
                quorum: requirement.quorum, reviewers: requirement.reviewers, category: event.category, riskLevel: riskLevel, requestedAt: now,
                expiresAt: now.addingTimeInterval(TimeInterval(requirement.timeout)))
            // The approval covers the definition the call saw only; one held for its definition also accepts it.
            requested.definitionHash = pin?.hash
            if let pin, pin.status != .accepted, policies.policy(for: identity.server)?.policy.onDefinitionChange == .hold {
                requested.definitionChange = pin.review
            }
            var seen = desk.waiters.generation
            let admission: ApprovalBook.Admission
            do {
                admission = try await logSpan {
                    try await desk.book.admit(call: call, request: requested, reservations: reservations, maxPending: maxPendingApprovals, now: now)
                }
            } catch let refusal as ToolCallRecorder.NotAdmitted {
                if let call { try await recorder.record(call) }
                return noRoomOnRelease(request, callID: callID, ruling: ruling, key: refusal.key)
            } catch let full as ApprovalBook.TooManyPending {
                return try await tooManyPending(request, callID: callID, call: call, ruling: ruling, full: full)
            }
            call = nil
            // The decision deadline (PolicyGate+Deadline) ends once the request is recorded: the wait for reviewers has its own
            // bounds. Past it, the agent was refused already: the call is not held (an identical retry uses the request). A
            // call released at once by an approved request goes on: past the deadline, its outcome is recorded as not sent.
            if case .released = admission {
            } else if DecisionRace.current?.disarm() == false {
                throw DecisionRace.Expired()
            }
            var approval: Approval
            switch admission {
            case .released(let used):
                if let changed = try await definitionChanged(request, approval: used, callID: callID) { return changed }
                logger.info(
                    "an identical call used an approved request",
                    metadata: ["approval": "\(used.id.lowercasedString)", "call": "\(callID.lowercasedString)", "tool": "\(request.tool)"])
                metrics.approvalOutcome("released")
                return .forward(
                    ToolCallTicket(callID: callID, identity: identity, tool: request.tool, reservations: reservations, decision: "approved"))
            case .created(let made):
                logger.notice(
                    "call held for approval",
                    metadata: [
                        "approval": "\(made.id.lowercasedString)", "call": "\(callID.lowercasedString)", "tool": "\(request.tool)",
                        "rule": "\(ruling.rule)",
                    ])
                approval = made
            case .joined(let pending):
                approval = pending
            }
            waiting: while true {
                switch held.observe(approval, now: Date()) {
                case .run:
                    if let changed = try await definitionChanged(request, approval: approval, callID: callID) { return changed }
                    let released: [CounterReservation]
                    switch try await reservationsOnRelease(request, approval: approval, callID: callID) {
                    case .refused(let verdict): return verdict
                    case .reservations(let made): released = made
                    }
                    let outcome: ApprovalBook.Decided
                    do {
                        outcome = try await desk.book.decide(approval.id, reservations: released) {
                            $0.consume(by: callID, reservations: released, now: Date())
                        }
                    } catch let refusal as ToolCallRecorder.NotAdmitted {
                        return noRoomOnRelease(request, callID: callID, ruling: ruling, key: refusal.key)
                    }
                    switch outcome {
                    case .decided:
                        metrics.approvalOutcome("released")
                        return .forward(
                            ToolCallTicket(callID: callID, identity: identity, tool: request.tool, reservations: released, decision: "approved"))
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
            return .refused(verdict(.policyChanged(tool: request.tool, server: identity.server, approval: approval), callID: callID))
        }
        let call = PolicyCall(
            agent: identity.agent, grant: identity.grant, session: identity.session, server: identity.server, tool: request.tool,
            arguments: request.arguments, category: approval.request.category.flatMap(RiskCategory.init(rawValue:)), now: Date())
        let decision = policy.evaluate(call, counts: try await recorder.counts(policy.counterKeys(for: call)))
        switch decision.outcome {
        case .limited(let retryAfter, let reason):
            let refusal = GateRefusal.limitedOnRelease(
                tool: request.tool, reason: reason, retryAfter: retryAfter, rule: decision.rule, policyHash: decision.policyHash,
                approvalID: approval.id)
            return .refused(verdict(refusal, callID: callID))
        default:
            return .reservations(decision.reservations)
        }
    }

    /// The verdict for an approved call whose tool's definition, as recorded now, is no longer the one the approval
    /// was asked under; nil when it is (or the request names none, or the tool is not recorded).
    private func definitionChanged(_ request: ToolCallRequest, approval: Approval, callID: UUID) async throws -> ToolCallVerdict? {
        guard let inventory, let asked = approval.request.definitionHash,
            let current = try await inventory.recordedHash(server: request.identity.server, tool: request.tool), current != asked
        else { return nil }
        logger.notice(
            "an approved call was not run: its tool's definition changed while it was held",
            metadata: ["approval": "\(approval.id.lowercasedString)", "tool": "\(request.tool)", "asked": "\(asked)", "current": "\(current)"])
        return verdict(.definitionChangedWhileHeld(tool: request.tool, approval: approval, current: current), callID: callID)
    }

    private enum Release {
        case reservations([CounterReservation])
        case refused(ToolCallVerdict)
    }

    /// Refuses a call that needs approval because its agent has as many requests pending as it may: recorded as
    /// `limited` by `limits.max_pending_approvals` (a refusal: bounded arguments, the refusal budget), no request is
    /// made, nothing is forwarded and no reviewer is notified.
    private func tooManyPending(
        _ request: ToolCallRequest, callID: UUID, call: ToolCallDecided?, ruling: GateRuling, full: ApprovalBook.TooManyPending
    ) async throws -> ToolCallVerdict {
        let refusal = GateRefusal.tooManyPending(
            tool: request.tool, agent: full.agent, pending: full.pending, cap: full.cap, policyHash: ruling.policyHash)
        metrics.pendingApprovalsRefused(server: request.identity.server)
        logger.notice(
            "call refused: its agent has the most approval requests pending it may have",
            metadata: ["agent": "\(full.agent)", "pending": "\(full.pending)", "tool": "\(request.tool)"])
        if var refused = call {
            refused.decision = "limited"
            refused.rule = GateRefusal.maxPendingRule
            refused.reason = GateRefusal.tooManyPendingReason(agent: full.agent, pending: full.pending, cap: full.cap)
            refused.bound(
                arguments: request.arguments, canonicalBytes: request.arguments.canonicalJSON.utf8.count, maxBytes: maxRefusedArgumentBytes)
            try await recordRefusal(refused)
        }
        return verdict(refusal, callID: callID)
    }

    private func noRoomOnRelease(_ request: ToolCallRequest, callID: UUID, ruling: GateRuling, key: CounterKey) -> ToolCallVerdict {
        verdict(.noRoomOnRelease(tool: request.tool, counter: key.counter, rule: ruling.rule, policyHash: ruling.policyHash), callID: callID)
    }

    private func refused(_ request: ToolCallRequest, callID: UUID, approval: Approval, refusal: HeldCall.Refusal) -> ToolCallVerdict {
        switch refusal {
        case .denied(let reviewer, let reason):
            metrics.approvalOutcome("denied")
            return verdict(.approvalDenied(tool: request.tool, approval: approval, reviewer: reviewer, reason: reason), callID: callID)
        case .expired(let at):
            metrics.approvalOutcome("expired")
            return verdict(.approvalExpired(tool: request.tool, approval: approval, at: at), callID: callID)
        }
    }

    private func pendingResult(_ request: ToolCallRequest, callID: UUID, approval: Approval) -> ToolCallVerdict {
        metrics.approvalOutcome("pending")
        return verdict(.pending(tool: request.tool, approval: approval), callID: callID)
    }

    private func cancelled(_ request: ToolCallRequest, callID: UUID, approval: Approval) -> ToolCallVerdict {
        verdict(.cancelled(tool: request.tool, approval: approval), callID: callID)
    }
}
