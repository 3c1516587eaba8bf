import Foundation
import Logging
import TollgateCore
import TollgateMCP
import TollgatePostgres
import Tracing

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
    /// Outcomes the log could not take when their calls ended, kept until the database answers again.
    let outcomes: OutcomeBacklog
    /// Each agent's budget of refusals recorded one by one per minute (`limits.max_recorded_refusals_per_minute`).
    let refusals: RefusalBudget
    /// A refused call keeps at most this many bytes of arguments (`limits.max_refused_argument_bytes`).
    let maxRefusedArgumentBytes: Int
    /// The most approval requests one agent may have pending (`limits.max_pending_approvals`).
    let maxPendingApprovals: Int
    /// How long a decision may take (`limits.decision_deadline`); see `decide(_:)` in PolicyGate+Deadline.
    let decisionDeadline: Duration?
    /// Records each listing's tool definitions (the tool inventory, docs/inventory.md); nil: not recorded.
    let inventory: ToolDefinitionRecorder?
    /// The recorder on asynchronously committing connections, and each `commit: async` server's choice per tool; nil:
    /// every decision is durable before its call is forwarded.
    let asynchronous: (recorder: ToolCallRecorder, commits: [String: CommitChoice])?
    private let categories = RiskCategories()

    init(
        policies: PolicyBook, recorder: ToolCallRecorder, storage: [String: ArgumentRedaction], metrics: GatewayMetrics, approvals: ApprovalDesk?,
        limits: GatewayLimits = GatewayLimits(), inventory: ToolDefinitionRecorder? = nil,
        asynchronous: (recorder: ToolCallRecorder, commits: [String: CommitChoice])? = nil, logger: Logger
    ) {
        self.inventory = inventory
        self.asynchronous = asynchronous
        self.policies = policies
        self.recorder = recorder
        self.storage = storage
        self.metrics = metrics
        self.approvals = approvals
        self.logger = logger
        self.outcomes = OutcomeBacklog(metrics: metrics, logger: logger) { completed in try await recorder.record(completed) }
        self.refusals = RefusalBudget(perMinute: limits.maxRecordedRefusalsPerMinute, metrics: metrics, logger: logger) { summary in
            try await recorder.record(summary)
        }
        self.maxRefusedArgumentBytes = limits.maxRefusedArgumentBytes
        self.maxPendingApprovals = limits.maxPendingApprovals
        self.decisionDeadline = limits.decisionDeadline
    }

    /// The metadata key under which refusals carry the decision, in the result's `_meta`.
    static let metaKey = "io.tollgate/decision"

    func observe(listed definitions: [(name: String, bytes: [UInt8])], server: String, complete: Bool) {
        inventory?.observe(definitions, server: server, complete: complete)
    }

    /// An agent's listing shows each tool's accepted definition (docs/inventory.md, "Pinning"): a changed one is shown as
    /// accepted, a tool with none accepted not at all; as listed on a server whose policy says `on_definition_change:
    /// allow`.
    func present(listed definitions: [(name: String, bytes: [UInt8])], server: String, complete: Bool) async -> [String: ToolPresentation] {
        guard let inventory else { return [:] }
        inventory.observe(definitions, server: server, complete: complete)
        if policies.policy(for: server)?.policy.onDefinitionChange == .allow { return [:] }
        return await inventory.presentation(definitions, server: server, within: Self.listingRecordWait)
    }

    /// How long an agent's `tools/list` answer waits for its listing to be recorded (a first listing, or a change).
    static let listingRecordWait: Duration = .seconds(5)

    /// How the definition the call was decided on stands against the accepted one; nil without an inventory (pinning
    /// off) or for a tool the session's list does not name (the policy decides it unknown or hidden).
    func definitionPin(_ request: ToolCallRequest) async throws -> DefinitionPin? {
        guard let inventory, let descriptor = request.descriptor else { return nil }
        guard let hash = descriptor.definitionHash else {
            return DefinitionPin(hash: "", accepted: nil, seen: nil)  // not hashed: as good as never accepted
        }
        let server = request.identity.server
        if inventory.isAccepted(server: server, tool: request.tool, hash: hash) { return .accepted(hash: hash) }
        return try await inventory.pin(server: server, tool: request.tool, hash: hash)
    }

    func isHidden(tool: String, server: String) -> Bool {
        // Without a loaded policy every tool is hidden (fail closed): `tools/list` is empty, so a tool the policy
        // would hide is not revealed, and every call is refused (and recorded) in `decide`.
        policies.policy(for: server)?.isHidden(tool) ?? true
    }

    /// Decides `request` as call `callID`, without a deadline (`decide(_:)` puts one around this).
    func decide(_ request: ToolCallRequest, callID: UUID) async -> ToolCallVerdict {
        guard CallTracing.isOn else { return await decideUntraced(request, callID: callID) }
        // The decision's span (traces, docs/operating.md): the log's append and an approval hold are its children.
        let span = startSpan("tollgate.decide")
        defer { span.end() }
        let verdict = await ServiceContext.withValue(span.context) { await decideUntraced(request, callID: callID) }
        if span.isRecording {
            span.attributes["tollgate.agent"] = request.identity.agent
            span.attributes["tollgate.server"] = request.identity.server
            span.attributes["gen_ai.tool.name"] = request.tool
            span.attributes["tollgate.call_id"] = callID.lowercasedString
            switch verdict {
            case .forward(let ticket): span.attributes["tollgate.decision"] = ticket.decision
            case .refuse(_, let meta, _):
                span.attributes["tollgate.decision"] = meta[Self.metaKey]?["outcome"]?.stringValue ?? "refused"
                span.attributes["tollgate.rule"] = meta[Self.metaKey]?["rule"]?.stringValue ?? ""
            case .unknownTool: span.attributes["tollgate.decision"] = "unknown_tool"
            }
        }
        return verdict
    }

    /// Records one step's time in the log (`tollgate.log.append`, a child of the decision's span): an append of the
    /// call's decision, in one PostgreSQL transaction.
    func logSpan<T>(_ body: () async throws -> T) async throws -> T {
        guard CallTracing.isOn else { return try await body() }
        let span = startSpan("tollgate.log.append", ofKind: .client)
        defer { span.end() }
        if span.isRecording {
            span.attributes["db.system.name"] = "postgresql"
            span.attributes["db.operation.name"] = "append"
        }
        do {
            return try await ServiceContext.withValue(span.context) { try await body() }
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    private func decideUntraced(_ request: ToolCallRequest, callID: UUID) async -> ToolCallVerdict {
        let started = ContinuousClock.now
        let server = request.identity.server
        let policy = policies.policy(for: server)
        if let reason = request.catalogRefusal {
            return await refuseUnruled(
                .catalogUnavailable(tool: request.tool, reason: reason, policyHash: policy?.contentHash ?? ""), request, callID: callID,
                started: started)
        }
        guard let policy else { return await refuseUnruled(.noPolicy(server: server), request, callID: callID, started: started) }
        let category = request.descriptor.map(categories.category(of:))
        let call = PolicyCall(
            agent: request.identity.agent, grant: request.identity.grant, session: request.identity.session, server: server, tool: request.tool,
            arguments: request.arguments, category: category, now: Date())
        do {
            return try await decide(request, call: call, policy: policy, callID: callID, category: category, started: started)
        } catch {
            // Past the decision deadline the agent has its answer, and the work left is dropped: nothing to report.
            if Task.isCancelled { return verdict(.unrecorded(tool: request.tool, policyHash: policy.contentHash), callID: callID) }
            logger.error("cannot record a decision; the call is refused", metadata: ["tool": "\(request.tool)", "error": "\(error)"])
            metrics.decided("error", server: server)
            return verdict(.unrecorded(tool: request.tool, policyHash: policy.contentHash), callID: callID)
        }
    }

    /// Rules on `call` and carries the ruling out, in rounds: a round whose reservations find a window full (another
    /// call took the room it saw) decides again on fresh counts.
    private func decide(
        _ request: ToolCallRequest, call: PolicyCall, policy: CompiledPolicy, callID: UUID, category: RiskCategory?,
        started: ContinuousClock.Instant
    ) async throws -> ToolCallVerdict {
        let keys = policy.counterKeys(for: call)
        let pin: DefinitionPin?
        do {
            pin = try await definitionPin(request)
        } catch {
            if Task.isCancelled { throw error }
            logger.warning(
                "cannot read a tool's accepted definition; the call is refused", metadata: ["tool": "\(request.tool)", "error": "\(error)"])
            return await refuseUnruled(
                .definitionUnknown(tool: request.tool, reason: String("\(error)".prefix(200)), policyHash: policy.contentHash), request,
                callID: callID, started: started)
        }
        // The first round may decide without reading the counts (`firstGuess`), unless a window is known to be full.
        var guess = !keys.isEmpty && !recorder.fullWindows.containsAny(keys)
        for _ in 0..<(guess ? 5 : 4) {
            let decision: PolicyDecision
            if guess, let first = policy.firstGuess(call) {
                decision = first
            } else {
                decision = policy.evaluate(call, counts: try await recorder.counts(keys))
            }
            guess = false
            var ruling = GateRuling(decision, tool: request.tool, approvals: approvals != nil)
            if let pin { ruling = ruling.pinned(pin, on: policy.policy.onDefinitionChange, tool: request.tool, approvals: approvals != nil) }
            var event = ToolCallDecided(
                request, callID: callID, ruling: ruling, category: category, storage: storage(of: request),
                micros: Int(started.duration(to: .now).microseconds), maxRefusedArgumentBytes: maxRefusedArgumentBytes)
            event.definitionStatus = pin?.status.rawValue
            do {
                return try await carryOut(ruling, event: event, request: request, pin: pin, started: started)
            } catch let refusal as ToolCallRecorder.NotAdmitted {
                recorder.fullWindows.insert(refusal.key)
            }
        }
        // Every round lost to concurrent calls: the window is as good as full.
        return await refuseUnruled(.contended(tool: request.tool, policyHash: policy.contentHash), request, callID: callID, started: started)
    }

    /// Records the ruling's decision and answers as it says; a hold records as it holds.
    ///
    /// - Throws: `ToolCallRecorder.NotAdmitted` when a reservation finds its window full (nothing was recorded).
    private func carryOut(
        _ ruling: GateRuling, event: ToolCallDecided, request: ToolCallRequest, pin: DefinitionPin?, started: ContinuousClock.Instant
    ) async throws -> ToolCallVerdict {
        let server = request.identity.server
        switch ruling.action {
        case .forward:
            // `commit: async`: forwarded once committed and ordered in the log, before the flush. Reservations are
            // made in the same transaction either way, so limits stay exact; approvals never come this way.
            let recorder =
                asynchronous.flatMap { $0.commits[server]?.mode(for: request.tool) == .async ? $0.recorder : nil } ?? self.recorder
            if ruling.reservations.isEmpty {
                try await logSpan { try await recorder.record(event) }
            } else {
                try await logSpan { try await recorder.record(event, reserving: ruling.reservations) }
            }
            metrics.decided(ruling.decision, server: server)
            metrics.relayOverhead(started.duration(to: .now))
            return .forward(ToolCallTicket(callID: event.callID, identity: request.identity, tool: request.tool, reservations: ruling.reservations))
        case .refuse(let refusal):
            try await recordRefusal(event)
            metrics.decided(ruling.decision, server: server)
            return verdict(refusal, callID: event.callID)
        case .hold(let requirement, let reservations):
            guard let approvals else { preconditionFailure("a call is held only when the approval workflow is enabled") }
            metrics.decided(ruling.decision, server: server)
            guard CallTracing.isOn else {
                return try await hold(
                    request, ruling: ruling, requirement: requirement, reservations: reservations, event: event, pin: pin, desk: approvals)
            }
            let span = startSpan("tollgate.approval.hold")
            defer { span.end() }
            let verdict = try await ServiceContext.withValue(span.context) {
                try await hold(request, ruling: ruling, requirement: requirement, reservations: reservations, event: event, pin: pin, desk: approvals)
            }
            if span.isRecording {
                span.attributes["tollgate.rule"] = ruling.rule
                if case .forward = verdict {
                    span.attributes["tollgate.approval.outcome"] = "released"
                } else {
                    span.attributes["tollgate.approval.outcome"] = "not_released"
                }
            }
            return verdict
        case .unknownTool:
            try await recordRefusal(event)
            metrics.decided(ruling.decision, server: server)
            return .unknownTool
        }
    }

    /// Records how a forwarded call ended. When the log cannot take it (the database is away), the outcome is kept in
    /// memory and written once the database answers (`OutcomeBacklog`); meanwhile the reservations it gives back stay
    /// counted, so the windows err on the side of refusing.
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
        if let span = ticket.span {
            if span.isRecording {
                span.attributes["tollgate.outcome"] = outcome.name
                if case .rpcError(let code) = outcome { span.attributes["rpc.jsonrpc.error_code"] = code }
            }
            if outcome != .success { span.setStatus(SpanStatus(code: .error, message: outcome.name)) }
            span.end()
        }
        logger.info(
            "tool call",
            metadata: [
                "agent": "\(ticket.identity.agent)", "server": "\(ticket.identity.server)", "tool": "\(ticket.tool)",
                "call": "\(ticket.callID.lowercasedString)", "session": "\(ticket.identity.session)", "decision": "\(ticket.decision)",
                "outcome": "\(outcome.name)", "duration_ms": "\(Self.milliseconds(duration))",
            ])
        await recordWithinDeadline(event)
    }

    /// "12.345": milliseconds with three decimals, for log lines.
    static func milliseconds(_ duration: Duration) -> String {
        let micros = duration.microseconds
        let fraction = String(micros % 1000)
        return "\(micros / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }

    // MARK: - Helpers

    /// Records a refused call in full while its agent has budget left this minute; past it, the call is counted in the
    /// agent's `RefusalsSummarized` for the minute instead.
    ///
    /// Each refusal recorded one by one also gets a log line (`tool call refused`, at `info`); those past the budget are
    /// in the summary's line instead, so a flood of refused calls cannot flood the log either.
    func recordRefusal(_ event: ToolCallDecided) async throws {
        guard refusals.admit(event) else { return }
        logger.info(
            "tool call refused",
            metadata: [
                "agent": "\(event.agent)", "server": "\(event.server)", "tool": "\(event.tool)", "call": "\(event.callID.lowercasedString)",
                "session": "\(event.session)", "decision": "\(event.decision)", "outcome": "refused", "rule": "\(event.rule)",
                "duration_ms": "\(Self.milliseconds(.microseconds(event.decisionMicros)))",
            ])
        try await logSpan { try await recorder.record(event) }
    }

    /// How `request`'s arguments are stored in the log.
    func storage(of request: ToolCallRequest) -> ArgumentStorage {
        (storage[request.identity.server] ?? ArgumentRedaction()).storage(for: request.tool)
    }

    /// Records a refusal no policy rule made (no policy, no tool list, contention) and answers with it; a failure to
    /// record is only logged: the call is refused anyway.
    func refuseUnruled(
        _ ruling: GateRuling, _ request: ToolCallRequest, callID: UUID, started: ContinuousClock.Instant
    ) async -> ToolCallVerdict {
        let event = ToolCallDecided(
            request, callID: callID, ruling: ruling, category: nil, storage: storage(of: request),
            micros: Int(started.duration(to: .now).microseconds), maxRefusedArgumentBytes: maxRefusedArgumentBytes)
        metrics.decided(ruling.decision, server: request.identity.server)
        do {
            try await recordRefusal(event)
        } catch {
            logger.error("cannot record a refusal", metadata: ["tool": "\(request.tool)", "error": "\(error)"])
        }
        guard case .refuse(let refusal) = ruling.action else { preconditionFailure("an unruled refusal refuses") }
        return verdict(refusal, callID: callID)
    }

    /// The relay's answer for a refusal: its text, and its particulars in the result's `_meta`.
    func verdict(_ refusal: GateRefusal, callID: UUID) -> ToolCallVerdict {
        var meta: [String: JSONValue] = [
            "outcome": .string(refusal.outcome), "rule": .string(refusal.rule), "policy": .string(refusal.policyHash),
            "callId": .string(callID.lowercasedString),
        ]
        if let retryAfter = refusal.retryAfter { meta["retryAfter"] = .number(Double(retryAfter)) }
        if let approvalID = refusal.approvalID { meta["approvalId"] = .string(approvalID.lowercasedString) }
        return .refuse(text: refusal.text, meta: [Self.metaKey: .object(meta)], structured: refusal.structured)
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
