import Foundation
import Logging
import TollgateCore

/// The one way a reviewer's approve or deny is taken, whatever it came through (`/v1`, the reviewer page, Slack): the
/// role check, the rules on comments and reasons, and ``ApprovalBook/decide(_:reservations:_:)`` with the request's own
/// rules (quorum, no self-approval, named reviewers, one outcome). A refusal is an ``ApprovalRoutes/Problem`` with the
/// API's status and code, so every front says the same thing. Approving a request that holds a call for its tool's
/// definition (`definitionChange`) also accepts that definition (``DefinitionAcceptance/acceptApproved(_:)``).
///
/// ```swift
/// let approval = try await decisions.decide(id, by: reviewer, .deny(reason: "not during the freeze"))
/// ```
struct ApprovalDecisions: Sendable {
    let book: ApprovalBook
    let logger: Logger

    /// Characters in a comment or a reason.
    static let maxTextLength = 2000

    enum Verdict: Sendable {
        case approve(comment: String?)
        case deny(reason: String?)

        var approves: Bool {
            if case .approve = self { return true }
            return false
        }
    }

    /// Whether `reviewer` may decide at all; the refusal when not (an auditor).
    static func mayDecide(_ reviewer: ReviewerConfig) -> ApprovalRoutes.Problem? {
        guard !reviewer.role.mayDecide else { return nil }
        return ApprovalRoutes.Problem(
            .forbidden, "forbidden", "\(reviewer.id) is an \(reviewer.role.rawValue) and may read approvals, not decide them")
    }

    /// Why a comment or reason cannot be recorded (too long, a NUL), or `nil`.
    static func textProblem(_ text: String?, field: String) -> ApprovalRoutes.Problem? {
        guard let text, text.count > maxTextLength || text.unicodeScalars.contains("\0") else { return nil }
        return ApprovalRoutes.Problem(.badRequest, "invalid_body", "`\(field)` must have at most \(maxTextLength) characters and no NUL")
    }

    /// Approves or denies approval `id` as `reviewer`; the approval after the decision.
    ///
    /// - Throws: ``ApprovalRoutes/Problem`` for every refusal (`forbidden`, `invalid_body`, `not_found`, `already_decided`,
    ///   `already_granted`, `self_approval`, `not_a_reviewer`); a database error as it comes.
    func decide(_ id: UUID, by reviewer: ReviewerConfig, _ verdict: Verdict, now: Date = Date()) async throws -> Approval {
        if let problem = Self.mayDecide(reviewer) { throw problem }
        let outcome: ApprovalBook.Decided
        switch verdict {
        case .approve(let comment):
            if let problem = Self.textProblem(comment, field: "comment") { throw problem }
            outcome = try await book.decide(id) { $0.grant(by: reviewer.id, comment: comment, now: now) }
        case .deny(let reason):
            if let problem = Self.textProblem(reason, field: "reason") { throw problem }
            guard let reason, !reason.allSatisfy(\.isWhitespace) else {
                throw ApprovalRoutes.Problem(.badRequest, "invalid_body", "a denial needs a reason (the agent is shown it)")
            }
            outcome = try await book.decide(id) { $0.deny(by: reviewer.id, reason: reason, now: now) }
        }
        switch outcome {
        case .notFound:
            throw ApprovalRoutes.notFound(id.lowercasedString)
        case .refused(let refusal, let approval):
            throw ApprovalRoutes.problem(for: refusal, approval: approval)
        case .decided(let approval):
            logger.notice(
                verdict.approves ? "approval granted" : "approval denied",
                metadata: ["approval": "\(approval.id.lowercasedString)", "reviewer": "\(reviewer.id)", "status": "\(approval.status.rawValue)"])
            // A call held for its tool's definition: approving it accepts the definition the reviewers were shown.
            if verdict.approves { await DefinitionAcceptance(book: book, logger: logger).acceptApproved(approval) }
            return approval
        }
    }
}
