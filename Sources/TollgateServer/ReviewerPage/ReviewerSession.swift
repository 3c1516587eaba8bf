import Foundation
import TollgateCore

/// A signed-in reviewer on the reviewer page: who (as the configuration has them now), their session's CSRF token,
/// and the session's key (the SHA-256 of its cookie).
struct ReviewerSession: Sendable {
    let reviewer: ReviewerConfig
    let csrfToken: String
    /// 64 lowercase hex digits: the SHA-256 of the `tollgate_ui` cookie's value, the session's key in the database.
    let cookieHash: String
    let createdAt: Date
    let lastSeenAt: Date

    /// Whether the reviewer may approve and deny (not an auditor): only then do pages show the forms.
    var mayDecide: Bool { reviewer.role.mayDecide }
}
