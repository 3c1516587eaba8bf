import Foundation
import Logging
import TollgateCore
import TollgateMCP
import TollgatePostgres

/// The gate of `tollgate serve`: decides each `tools/call` with the server's policy and the rate windows in
/// PostgreSQL, and appends the decision to the log before the relay forwards anything.
///
/// Fail closed: a server without a loaded policy, a database that cannot be read or written, or a decision that
/// cannot be recorded all refuse the call with a reason the agent can read.
struct PolicyGate: ToolCallGate {
    let policies: PolicyBook
    let recorder: ToolCallRecorder
    /// How each server's arguments are stored in the log.
    let storage: [String: ArgumentRedaction]
    let metrics: GatewayMetrics
    let logger: Logger
    /// The approval workflow: requests, and the held calls' wake-ups. Without it, `require_approval` refuses.
    let approvals: ApprovalDesk?
    private let categories = RiskCategories()

    init(
        policies: PolicyBook, recorder: ToolCallRecorder, storage: [String: ArgumentRedaction], metrics: GatewayMetrics, approvals: ApprovalDesk?,
        logger: Logger
    ) {
        self.policies = policies
        self.recorder = recorder
        self.storage = storage
        self.metrics = metrics
        self.approvals = approvals
        self.logger = logger
    }

    /// The metadata key under which refusals carry the decision, in the result's `_meta`.
    static let metaKey = "io.tollgate/decision"

    func isHidden(tool: String, server: String) -> Bool {
        // Without a loaded policy every tool is hidden (fail closed): `tools/list` is empty, so a tool the policy
        // would hide is not revealed, and every call is refused (and recorded) in `decide`.
        policies.policy(for: server)?.isHidden(tool) ?? true
    }

    func decide(_ request: ToolCallRequest) async -> ToolCallVerdict {
        let started = ContinuousClock.now
        let identity = request.identity
        let callID = UUID.random()
        if let reason = request.catalogRefusal {
            await recordRefusal(
                request, callID: callID, decision: "error", reason: reason, rule: "catalog",
                policyHash: policies.policy(for: identity.server)?.contentHash ?? "", started: started)
            return refuse(
                callID: callID, outcome: "error", rule: "catalog", policyHash: "", text: "Tollgate refused this call to `\(request.tool)`: \(reason)."
            )
        }
        guard let policy = policies.policy(for: identity.server) else {
            let reason = "no valid policy is loaded for the server `\(identity.server)`, so every call to it is refused"
            await recordRefusal(request, callID: callID, decision: "error", reason: reason, rule: "policy", policyHash: "", started: started)
            return refuse(callID: callID, outcome: "error", rule: "policy", policyHash: "", text: "Tollgate refused this call: \(reason).")
        }
        let category = request.descriptor.map(categories.category(of:))
        let call = PolicyCall(
            agent: identity.agent, grant: identity.grant, session: identity.session, server: identity.server, tool: request.tool,
            arguments: request.arguments, category: category, now: Date())
        let keys = policy.counterKeys(for: call)
        // Counts are read before deciding, except in a first guess on empty windows when every limit of the call is a
        // fixed window that is not known to be full: such a decision's ceilings do not depend on the counts, and its
        // reservations are the real test (a full window refuses them, and the call is decided again on the counts).
        // That spares a trip to the database for every call within its limits.
        var guess = !keys.isEmpty && !recorder.fullWindows.containsAny(keys)
        do {
            for _ in 0..<(guess ? 5 : 4) {
                let decision: PolicyDecision
                if guess, case let first = policy.evaluate(call, counts: [:]), case .allow = first.outcome,
                    first.reservations.allSatisfy({ $0.algorithm == .fixed })
                {
                    decision = first
                } else {
                    decision = policy.evaluate(call, counts: try await recorder.counts(keys))
                }
                guess = false
                let micros = Int(started.duration(to: .now).microseconds)
                switch decision.outcome {
                case .allow:
                    let event = decided(request, callID: callID, decision: decision, category: category, micros: micros)
                    do {
                        if decision.reservations.isEmpty {
                            try await recorder.record(event)
                        } else {
                            try await recorder.record(event, reserving: decision.reservations)
                        }
                    } catch let refusal as ToolCallRecorder.NotAdmitted {
                        // A concurrent call took the room this decision saw (or the guess found the window full): read
                        // the counts again and decide again.
                        recorder.fullWindows.insert(refusal.key)
                        continue
                    }
                    metrics.decided("allow", server: identity.server)
                    metrics.relayOverhead(started.duration(to: .now))
                    return .forward(ToolCallTicket(callID: callID, identity: identity, tool: request.tool, reservations: decision.reservations))
                case .deny(let reason):
                    try await recorder.record(decided(request, callID: callID, decision: decision, category: category, micros: micros))
                    metrics.decided("deny", server: identity.server)
                    return refuse(
                        callID: callID, outcome: "deny", rule: decision.rule, policyHash: decision.policyHash,
                        text: "Tollgate denied this call to `\(request.tool)`: \(reason) (policy rule `\(decision.rule)`).")
                case .limited(let retryAfter, let reason):
                    try await recorder.record(decided(request, callID: callID, decision: decision, category: category, micros: micros))
                    metrics.decided("limited", server: identity.server)
                    return refuse(
                        callID: callID, outcome: "limited", rule: decision.rule, policyHash: decision.policyHash,
                        text:
                            "Tollgate rate limit reached for `\(request.tool)`: \(reason). Retry after \(retryAfter) seconds (policy rule `\(decision.rule)`).",
                        retryAfter: retryAfter)
                case .requireApproval(let requirement) where approvals != nil:
                    var held = decision
                    held.reservations = []
                    let event = decided(request, callID: callID, decision: held, category: category, micros: micros)
                    metrics.decided("require_approval", server: identity.server)
                    return try await hold(
                        request, callID: callID, decision: decision, requirement: requirement, event: event, desk: approvals!)
                case .requireApproval:
                    var refused = decision
                    refused.reservations = []
                    var event = decided(request, callID: callID, decision: refused, category: category, micros: micros)
                    event.reason = Self.approvalUnavailable
                    try await recorder.record(event)
                    metrics.decided("require_approval", server: identity.server)
                    return refuse(
                        callID: callID, outcome: "require_approval", rule: decision.rule, policyHash: decision.policyHash,
                        text: "Tollgate refused this call to `\(request.tool)`: it needs human approval (policy rule `\(decision.rule)`), "
                            + "and \(Self.approvalUnavailable).")
                case .hidden:
                    try await recorder.record(decided(request, callID: callID, decision: decision, category: category, micros: micros))
                    metrics.decided("hidden", server: identity.server)
                    return .unknownTool
                }
            }
            // Four rounds lost to concurrent calls: the window is as good as full.
            let reason = "the limits for `\(request.tool)` are contended; no room was left after several attempts"
            await recordRefusal(
                request, callID: callID, decision: "limited", reason: reason, rule: "limits", policyHash: policy.contentHash, started: started)
            return refuse(
                callID: callID, outcome: "limited", rule: "limits", policyHash: policy.contentHash,
                text: "Tollgate rate limit reached for `\(request.tool)`: \(reason). Retry after 1 seconds.", retryAfter: 1)
        } catch {
            logger.error(
                "cannot record a decision; the call is refused", metadata: ["tool": "\(request.tool)", "error": "\(error)"])
            metrics.decided("error", server: identity.server)
            return refuse(
                callID: callID, outcome: "error", rule: "database", policyHash: policy.contentHash,
                text: "Tollgate refused this call to `\(request.tool)`: the decision could not be recorded in the audit log "
                    + "(the database is unavailable), and no call is forwarded unrecorded. Try again later.")
        }
    }

    static let approvalUnavailable = "the approval workflow is not enabled on this gateway yet"

    func complete(_ ticket: ToolCallTicket, outcome: ToolCallOutcome) async {
        let duration = ticket.forwardedAt.duration(to: .now)
        metrics.completed(outcome.name, server: ticket.identity.server, duration: duration)
        var errorCode: Int?
        var errorText: String?
        switch outcome {
        case .rpcError(let code): errorCode = code
        case .transportError(let text), .notSent(let text): errorText = text
        default: break
        }
        let event = ToolCallCompleted(
            callID: ticket.callID, server: ticket.identity.server, tool: ticket.tool, outcome: outcome.name, errorCode: errorCode,
            error: errorText, durationMillis: Double(duration.microseconds) / 1000,
            released: outcome.releasesReservations ? ticket.reservations.map(ToolCallDecided.Reservation.init) : [], completedAt: Date())
        do {
            try await recorder.record(event)
        } catch {
            logger.error("cannot record a call's outcome", metadata: ["call": "\(ticket.callID)", "error": "\(error)"])
        }
    }

    // MARK: - Helpers

    func decided(_ request: ToolCallRequest, callID: UUID, decision: PolicyDecision, category: RiskCategory?, micros: Int) -> ToolCallDecided {
        var reason: String?
        var retryAfter: Int?
        switch decision.outcome {
        case .deny(let text): reason = text
        case .limited(let seconds, let text):
            reason = text
            retryAfter = seconds
        case .requireApproval(let requirement): reason = requirement.reason
        case .allow, .hidden: break
        }
        let mode = (storage[request.identity.server] ?? ArgumentRedaction()).storage(for: request.tool)
        return ToolCallDecided(
            callID: callID, agent: request.identity.agent, grant: request.identity.grant, session: request.identity.session,
            server: request.identity.server, tool: request.tool, requestID: request.requestID.description,
            arguments: mode.stored(request.arguments), argumentsHash: ToolCallDecided.hash(arguments: request.arguments),
            argumentsStorage: mode.rawValue, decision: decision.outcome.name, reason: reason, retryAfter: retryAfter, rule: decision.rule,
            policyHash: decision.policyHash, category: category?.rawValue,
            reservations: decision.reservations.map(ToolCallDecided.Reservation.init), decisionMicros: micros, decidedAt: Date())
    }

    /// Records a refusal the policy did not make (no policy, contention); failures are only logged: it is refused anyway.
    private func recordRefusal(
        _ request: ToolCallRequest, callID: UUID, decision: String, reason: String, rule: String, policyHash: String, started: ContinuousClock.Instant
    ) async {
        let mode = (storage[request.identity.server] ?? ArgumentRedaction()).storage(for: request.tool)
        let event = ToolCallDecided(
            callID: callID, agent: request.identity.agent, grant: request.identity.grant, session: request.identity.session,
            server: request.identity.server, tool: request.tool, requestID: request.requestID.description,
            arguments: mode.stored(request.arguments), argumentsHash: ToolCallDecided.hash(arguments: request.arguments),
            argumentsStorage: mode.rawValue, decision: decision, reason: reason, retryAfter: nil, rule: rule, policyHash: policyHash,
            category: nil, reservations: [], decisionMicros: Int(started.duration(to: .now).microseconds), decidedAt: Date())
        metrics.decided(decision, server: request.identity.server)
        do {
            try await recorder.record(event)
        } catch {
            logger.error("cannot record a refusal", metadata: ["tool": "\(request.tool)", "error": "\(error)"])
        }
    }

    func refuse(
        callID: UUID, outcome: String, rule: String, policyHash: String, text: String, retryAfter: Int? = nil, approvalID: UUID? = nil,
        structured: JSONValue? = nil
    ) -> ToolCallVerdict {
        var meta: [String: JSONValue] = [
            "outcome": .string(outcome), "rule": .string(rule), "policy": .string(policyHash), "callId": .string(callID.uuidString.lowercased()),
        ]
        if let retryAfter { meta["retryAfter"] = .number(Double(retryAfter)) }
        if let approvalID { meta["approvalId"] = .string(approvalID.uuidString.lowercased()) }
        return .refuse(text: text, meta: [Self.metaKey: .object(meta)], structured: structured)
    }
}

extension Duration {
    /// The duration in whole microseconds.
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}

extension ArgumentStorage {
    /// The arguments as this mode stores them: in full, not at all (`nil`: the hash is kept beside), or only the
    /// names of an object's members.
    func stored(_ arguments: JSONValue) -> JSONValue? {
        switch self {
        case .full: arguments
        case .hash: nil
        case .keys:
            if case .object(let members) = arguments {
                .array(members.keys.sorted().map { .string($0) })
            } else {
                .null
            }
        }
    }
}
