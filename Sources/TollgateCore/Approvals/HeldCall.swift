import Foundation

/// The hold-then-pending logic of one call waiting for approval, as a state machine without I/O: the gateway
/// feeds it the approval each time it changes (or a timer fires) and does what it answers.
///
/// ```swift
/// var held = HeldCall(holdUntil: now + 45, progressEvery: 5)
/// while true {
///     switch held.observe(approval, now: Date()) {
///     case .run: ...            // use the approval and forward the call
///     case .wait(let until, let progress): ...
///     ...
///     }
/// }
/// ```
public struct HeldCall: Sendable {
    /// What to do next.
    public enum Action: Sendable, Equatable {
        /// Approved and unused: use it (append `ApprovalConsumed`) and forward the call.
        case run
        /// Denied or expired: answer the agent with this refusal.
        case refuse(Refusal)
        /// Past its expiry with nobody deciding: append `ApprovalExpired`, then observe again.
        case expire
        /// The hold is over and the request is still pending: answer "pending approval".
        case pending
        /// Another identical call used the approval first: this call needs a request of its own.
        case requestAgain
        /// Wait for a change or until `until`; tell the agent `progress` first, when there is some.
        case wait(until: Date, progress: Progress?)
    }

    public enum Refusal: Sendable, Equatable {
        case denied(by: String, reason: String)
        case expired(at: Date)
    }

    /// A progress report for the agent: `progress` only ever increases (seconds waited), `total` is the hold.
    public struct Progress: Sendable, Equatable {
        public var progress: Double
        public var total: Double
        public var message: String
    }

    public let startedAt: Date
    public let holdUntil: Date
    public let progressEvery: TimeInterval
    private var nextProgress: Date
    private var reportedGrants = -1
    private var lastReported: Double = -1

    public init(startedAt: Date, hold: TimeInterval, progressEvery: TimeInterval = 5) {
        self.startedAt = startedAt
        self.holdUntil = startedAt.addingTimeInterval(hold)
        self.progressEvery = progressEvery
        self.nextProgress = startedAt
    }

    public mutating func observe(_ approval: Approval, now: Date) -> Action {
        switch approval.status(at: now) {
        case .approved:
            if approval.consumption != nil { return .requestAgain }
            return now < approval.request.expiresAt ? .run : .refuse(.expired(at: approval.request.expiresAt))
        case .denied:
            return .refuse(.denied(by: approval.denial?.reviewer ?? "a reviewer", reason: approval.denial?.reason ?? "denied"))
        case .expired:
            return approval.status == .pending ? .expire : .refuse(.expired(at: approval.expiry?.expiredAt ?? approval.request.expiresAt))
        case .pending:
            if now >= holdUntil { return .pending }
            var progress: Progress?
            if now >= nextProgress || approval.grants.count != reportedGrants {
                progress = report(approval, now: now)
                reportedGrants = approval.grants.count
                while nextProgress <= now { nextProgress = nextProgress.addingTimeInterval(progressEvery) }
            }
            return .wait(until: min(holdUntil, approval.request.expiresAt, nextProgress), progress: progress)
        }
    }

    private mutating func report(_ approval: Approval, now: Date) -> Progress {
        // Strictly increasing, as MCP requires, even when two reports fall in the same millisecond.
        var waited = (now.timeIntervalSince(startedAt) * 1000).rounded() / 1000
        if waited <= lastReported { waited = lastReported + 0.001 }
        lastReported = waited
        let id = approval.id.lowercasedString
        let quorum = approval.request.quorum
        let message =
            "waiting for human approval \(id) (\(approval.grants.count) of \(quorum) approval\(quorum == 1 ? "" : "s")); "
            + "held for up to \(Int(holdUntil.timeIntervalSince(startedAt).rounded())) s"
        return Progress(progress: waited, total: holdUntil.timeIntervalSince(startedAt), message: message)
    }
}
