import Foundation
import Logging

/// What the gate needs to hold calls for approval: the requests in the database and the wake-ups of held calls.
struct ApprovalDesk: Sendable {
    let book: ApprovalBook
    let waiters: ApprovalWaiters
    /// How often a held call reports progress to an agent that asked for it.
    var progressEvery: TimeInterval = 5
}

extension ApprovalDesk {
    /// Appends `ApprovalExpired` to every pending request past its expiry (several gateways may race to; one wins).
    func expireDue(logger: Logger) async {
        do {
            for id in try await book.due(now: Date()) {
                if case .decided(let approval) = try await book.decide(id, { .success($0.expire(now: Date())) }), approval.status == .expired {
                    logger.notice("approval expired", metadata: ["approval": "\(id.lowercasedString)"])
                }
            }
        } catch {
            logger.warning("cannot expire due approvals; retrying", metadata: ["error": "\(error)"])
        }
    }
}
