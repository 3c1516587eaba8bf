import Foundation

/// One approval request as its events leave it: the pure fold of stream `approval-<id>`, and the decisions that
/// can be taken on it.
///
/// Deciding never does I/O: each function returns the events to append (with the stream's version as the expected
/// version) or why nothing may be appended. The caller appends with optimistic concurrency, so two reviewers
/// deciding at once resolve to one outcome: the loser re-reads the stream, decides again, and is told the outcome.
///
/// ```swift
/// var approval = Approval(requested)
/// switch approval.grant(by: "alice", comment: nil, now: Date()) {
/// case .success(let events): try append(events, expectedVersion: approval.version)
/// case .failure(let refusal): print(refusal)   // already decided, self-approval, ...
/// }
/// ```
public struct Approval: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable, CaseIterable {
        case pending, approved, denied, expired
    }

    public private(set) var request: ApprovalRequested
    /// The number of events folded: the stream's version.
    public private(set) var version: Int64
    public private(set) var status: Status
    /// Distinct reviewers' approvals, in order.
    public private(set) var grants: [ApprovalGranted]
    public private(set) var denial: ApprovalDenied?
    public private(set) var expiry: ApprovalExpired?
    /// Set once the approved call has run.
    public private(set) var consumption: ApprovalConsumed?
    /// When the outcome was reached (quorum, denial or expiry).
    public private(set) var decidedAt: Date?

    public var id: UUID { request.approvalID }

    public init(_ requested: ApprovalRequested) {
        request = requested
        version = 1
        status = .pending
        grants = []
    }

    /// The fold of a stream's events in order; `nil` when the first is not a request.
    public static func fold(_ events: [ApprovalEvent]) -> Approval? {
        guard case .requested(let requested)? = events.first else { return nil }
        var approval = Approval(requested)
        for event in events.dropFirst() { approval.apply(event) }
        return approval
    }

    /// Folds one more event. Every event moves the version on; one that cannot change the state (a second request,
    /// a decision after the outcome) changes nothing else, so replay is total and deterministic.
    public mutating func apply(_ event: ApprovalEvent) {
        version += 1
        switch event {
        case .requested:
            break
        case .granted(let granted):
            guard status == .pending, !grants.contains(where: { $0.reviewer == granted.reviewer }) else { return }
            grants.append(granted)
            if grants.count >= request.quorum {
                status = .approved
                decidedAt = granted.grantedAt
            }
        case .denied(let denied):
            guard status == .pending else { return }
            denial = denied
            status = .denied
            decidedAt = denied.deniedAt
        case .expired(let expired):
            guard status == .pending else { return }
            expiry = expired
            status = .expired
            decidedAt = expired.expiredAt
        case .consumed(let consumed):
            guard status == .approved, consumption == nil else { return }
            consumption = consumed
        }
    }

    /// The status as of `now`: a pending request past its expiry counts as expired even before its
    /// `ApprovalExpired` is written.
    public func status(at now: Date) -> Status {
        status == .pending && now >= request.expiresAt ? .expired : status
    }

    /// Whether an identical call may run on this approval at `now`: approved, not yet used, and not past its expiry
    /// (an approval that nobody used lapses like a request nobody decided).
    public func isUsable(at now: Date) -> Bool { status == .approved && consumption == nil && now < request.expiresAt }

    // MARK: - Decisions

    /// One reviewer's approval.
    ///
    /// Refused when the request is no longer pending (expired counts, even before its event: then the expiry is the
    /// event to append), when the reviewer is the agent that made the call, is not among the request's reviewers,
    /// or has already approved it (a reviewer counts once toward the quorum).
    public func grant(by reviewer: String, comment: String?, now: Date) -> Result<[ApprovalEvent], ApprovalRefusal> {
        if let refusal = refusalToDecide(by: reviewer, now: now) { return .failure(refusal) }
        if grants.contains(where: { $0.reviewer == reviewer }) {
            return .failure(.alreadyGranted(reviewer: reviewer, granted: grants.count, quorum: request.quorum))
        }
        return .success([.granted(ApprovalGranted(approvalID: id, reviewer: reviewer, comment: comment, grantedAt: now))])
    }

    /// One reviewer's refusal, which decides the request.
    public func deny(by reviewer: String, reason: String, now: Date) -> Result<[ApprovalEvent], ApprovalRefusal> {
        if let refusal = refusalToDecide(by: reviewer, now: now) { return .failure(refusal) }
        return .success([.denied(ApprovalDenied(approvalID: id, reviewer: reviewer, reason: reason, deniedAt: now))])
    }

    /// The expiry, once `now` is past `expiresAt` and nobody decided.
    public func expire(now: Date) -> [ApprovalEvent] {
        guard status == .pending, now >= request.expiresAt else { return [] }
        return [.expired(ApprovalExpired(approvalID: id, expiredAt: now))]
    }

    /// Uses the approval for `callID`, with the counter reservations made as it is released: once, and only when
    /// approved.
    public func consume(by callID: UUID, reservations: [CounterReservation], now: Date) -> Result<[ApprovalEvent], ApprovalRefusal> {
        guard status == .approved else { return .failure(.notApproved(status: status(at: now))) }
        if let consumption { return .failure(.alreadyConsumed(callID: consumption.callID)) }
        guard now < request.expiresAt else { return .failure(.lapsed(expiresAt: request.expiresAt)) }
        let made = reservations.map(ToolCallDecided.Reservation.init)
        return .success([.consumed(ApprovalConsumed(approvalID: id, callID: callID, reservations: made, consumedAt: now))])
    }

    private func refusalToDecide(by reviewer: String, now: Date) -> ApprovalRefusal? {
        let current = status(at: now)
        guard current == .pending else { return .alreadyDecided(outcome) }
        if reviewer == request.agent { return .selfApproval(agent: request.agent) }
        if !request.reviewers.isEmpty, !request.reviewers.contains(reviewer) {
            return .notAReviewer(reviewer: reviewer, allowed: request.reviewers)
        }
        return nil
    }

    /// How the request ended, for an "already decided" answer.
    public var outcome: ApprovalOutcome {
        switch status {
        case .pending:
            ApprovalOutcome(
                status: .expired, by: [], reason: "nobody decided before \(EventCoding.timestamp(request.expiresAt))", at: request.expiresAt)
        case .approved: ApprovalOutcome(status: .approved, by: grants.map(\.reviewer), reason: nil, at: decidedAt)
        case .denied: ApprovalOutcome(status: .denied, by: denial.map { [$0.reviewer] } ?? [], reason: denial?.reason, at: decidedAt)
        case .expired:
            ApprovalOutcome(status: .expired, by: [], reason: "nobody decided before \(EventCoding.timestamp(request.expiresAt))", at: decidedAt)
        }
    }
}

/// How a decided request ended: who decided, and why.
public struct ApprovalOutcome: Sendable, Hashable, Codable {
    public var status: Approval.Status
    public var by: [String]
    public var reason: String?
    public var at: Date?
}

/// Why a decision on an approval was not taken.
public enum ApprovalRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// The request is approved, denied or expired already.
    case alreadyDecided(ApprovalOutcome)
    /// This reviewer has already approved it; another reviewer must for the quorum.
    case alreadyGranted(reviewer: String, granted: Int, quorum: Int)
    /// The reviewer is the agent that made the call.
    case selfApproval(agent: String)
    /// The request names its reviewers, and this one is not among them.
    case notAReviewer(reviewer: String, allowed: [String])
    /// Only an approved request can be used.
    case notApproved(status: Approval.Status)
    /// The approval has run a call already.
    case alreadyConsumed(callID: UUID)
    /// Approved, but not used before its expiry.
    case lapsed(expiresAt: Date)

    /// A stable code for APIs: `already_decided`, `already_granted`, `self_approval`, `not_a_reviewer`, `not_approved`,
    /// `already_consumed`.
    public var code: String {
        switch self {
        case .alreadyDecided: "already_decided"
        case .alreadyGranted: "already_granted"
        case .selfApproval: "self_approval"
        case .notAReviewer: "not_a_reviewer"
        case .notApproved: "not_approved"
        case .alreadyConsumed: "already_consumed"
        case .lapsed: "lapsed"
        }
    }

    public var description: String {
        switch self {
        case .alreadyDecided(let outcome):
            var text = "this approval was already decided: \(outcome.status.rawValue)"
            if !outcome.by.isEmpty { text += " by \(outcome.by.joined(separator: ", "))" }
            if let reason = outcome.reason { text += " (\(reason))" }
            return text
        case .alreadyGranted(let reviewer, let granted, let quorum):
            return "\(reviewer) has already approved this request; it has \(granted) of the \(quorum) distinct approvals it needs"
        case .selfApproval(let agent):
            return "\(agent) made this call and cannot approve or deny it"
        case .notAReviewer(let reviewer, let allowed):
            return "\(reviewer) is not a reviewer of this request; it may be decided by \(allowed.joined(separator: ", "))"
        case .notApproved(let status):
            return "this approval is \(status.rawValue), not approved"
        case .alreadyConsumed(let callID):
            return "this approval was already used by call \(callID.lowercasedString)"
        case .lapsed(let expiresAt):
            return "this approval was not used before it expired at \(EventCoding.timestamp(expiresAt))"
        }
    }
}
