import Foundation

/// Appended when a `tools/call` needs human approval, in the same transaction as the call's `ToolCallDecided`.
/// Stream `approval-<approval id>`, version 1.
public struct ApprovalRequested: Codable, Sendable, Hashable {
    public static let type = "ApprovalRequested"

    @EventID public var approvalID: UUID
    /// The call that asked first (later identical calls join this request).
    @EventID public var callID: UUID
    public var agent: String
    public var grant: String
    public var session: String
    public var server: String
    public var tool: String
    /// The arguments as stored: in full, `null` (hash only), or their keys only, per `argumentsStorage`.
    public var arguments: JSONValue?
    /// SHA-256 of the arguments' canonical JSON: the approval covers exactly these arguments.
    public var argumentsHash: String
    public var argumentsStorage: String
    /// The policy version the approval is bound to.
    public var policyHash: String
    /// The rule that asked for approval, such as `tools.transfer.rules[0]`.
    public var rule: String
    /// The rule's `reason`, for reviewers.
    public var reason: String?
    /// Distinct reviewers' approvals needed.
    public var quorum: Int
    /// Who may decide; empty means any reviewer.
    public var reviewers: [String]
    /// The risk category of the tool, when known.
    public var category: String?
    /// The tool's risk level (`low`, `medium`, `high`, `critical`) as the classifier saw it when the call was held, when
    /// known (`nil` in requests made before it was recorded).
    public var riskLevel: String?
    public var requestedAt: Date
    public var expiresAt: Date
    /// The hash of the tool's definition the call was decided on (docs/inventory.md): the approval covers that
    /// definition only. Nil in requests made before definitions were pinned, or when the definition was not known.
    public var definitionHash: String?
    /// Set when the call is held because its tool's definition is not the accepted one: approving the request also
    /// accepts `definitionHash` (a ``ToolDefinitionAccepted`` naming this request).
    public var definitionChange: DefinitionChangeReview?

    public init(
        approvalID: UUID, callID: UUID, agent: String, grant: String, session: String, server: String, tool: String,
        arguments: JSONValue?, argumentsHash: String, argumentsStorage: String, policyHash: String, rule: String, reason: String?,
        quorum: Int, reviewers: [String], category: String?, riskLevel: String? = nil, requestedAt: Date, expiresAt: Date
    ) {
        self.approvalID = approvalID
        self.callID = callID
        self.agent = agent
        self.grant = grant
        self.session = session
        self.server = server
        self.tool = tool
        self.arguments = arguments
        self.argumentsHash = argumentsHash
        self.argumentsStorage = argumentsStorage
        self.policyHash = policyHash
        self.rule = rule
        self.reason = reason
        self.quorum = quorum
        self.reviewers = reviewers
        self.category = category
        self.riskLevel = riskLevel
        self.requestedAt = requestedAt
        self.expiresAt = expiresAt
    }

    /// What a reviewer is shown of a definition change that holds a call: the definition accepted before (nil: the tool
    /// is new, none was accepted) and what differs from it.
    public struct DefinitionChangeReview: Codable, Sendable, Hashable {
        /// The hash of the definition last accepted; nil for a tool with no accepted definition (new since the baseline).
        public var acceptedHash: String?
        /// What differs from the accepted definition (member by member, as in ``ToolDefinitionChanged``).
        public var changes: [ToolDefinitionChange]
        public var changesOmitted: Int
        /// Why there is no diff, when there is none (a new tool, or a definition too large to keep).
        public var note: String?

        public init(acceptedHash: String?, changes: [ToolDefinitionChange], changesOmitted: Int, note: String?) {
            self.acceptedHash = acceptedHash
            self.changes = changes
            self.changesOmitted = changesOmitted
            self.note = note
        }
    }

    /// What an identical call has in common with this one: agent, server, tool, arguments and policy version.
    public var fingerprint: ApprovalFingerprint {
        ApprovalFingerprint(agent: agent, server: server, tool: tool, argumentsHash: argumentsHash, policyHash: policyHash)
    }
}

/// One reviewer's approval. The request is approved once `quorum` distinct reviewers have granted it.
public struct ApprovalGranted: Codable, Sendable, Hashable {
    public static let type = "ApprovalGranted"

    @EventID public var approvalID: UUID
    public var reviewer: String
    public var comment: String?
    public var grantedAt: Date

    public init(approvalID: UUID, reviewer: String, comment: String?, grantedAt: Date) {
        self.approvalID = approvalID
        self.reviewer = reviewer
        self.comment = comment
        self.grantedAt = grantedAt
    }
}

/// A reviewer's refusal: one is enough to deny the request.
public struct ApprovalDenied: Codable, Sendable, Hashable {
    public static let type = "ApprovalDenied"

    @EventID public var approvalID: UUID
    public var reviewer: String
    public var reason: String
    public var deniedAt: Date

    public init(approvalID: UUID, reviewer: String, reason: String, deniedAt: Date) {
        self.approvalID = approvalID
        self.reviewer = reviewer
        self.reason = reason
        self.deniedAt = deniedAt
    }
}

/// Nobody decided before `expiresAt`.
public struct ApprovalExpired: Codable, Sendable, Hashable {
    public static let type = "ApprovalExpired"

    @EventID public var approvalID: UUID
    public var expiredAt: Date

    public init(approvalID: UUID, expiredAt: Date) {
        self.approvalID = approvalID
        self.expiredAt = expiredAt
    }
}

/// The approved call was forwarded: an approval runs one call, once.
public struct ApprovalConsumed: Codable, Sendable, Hashable {
    public static let type = "ApprovalConsumed"

    @EventID public var approvalID: UUID
    /// The call that ran: the held call itself, or an identical retry.
    @EventID public var callID: UUID
    /// The counter reservations made for the call as it was released (its limits count when it runs).
    public var reservations: [ToolCallDecided.Reservation]
    public var consumedAt: Date

    public init(approvalID: UUID, callID: UUID, reservations: [ToolCallDecided.Reservation], consumedAt: Date) {
        self.approvalID = approvalID
        self.callID = callID
        self.reservations = reservations
        self.consumedAt = consumedAt
    }
}

/// Any event of an approval's stream.
public enum ApprovalEvent: Sendable, Hashable {
    case requested(ApprovalRequested)
    case granted(ApprovalGranted)
    case denied(ApprovalDenied)
    case expired(ApprovalExpired)
    case consumed(ApprovalConsumed)

    /// The event types of approval streams.
    public static let types: Set<String> = [
        ApprovalRequested.type, ApprovalGranted.type, ApprovalDenied.type, ApprovalExpired.type, ApprovalConsumed.type,
    ]

    public static func stream(_ approvalID: UUID) -> String { "approval-\(approvalID.lowercasedString)" }

    /// Decodes an event of type `type`; `nil` for a type that is not an approval event.
    public static func decode(type: String, data: [UInt8]) throws -> ApprovalEvent? {
        switch type {
        case ApprovalRequested.type: .requested(try EventCoding.decode(ApprovalRequested.self, from: data))
        case ApprovalGranted.type: .granted(try EventCoding.decode(ApprovalGranted.self, from: data))
        case ApprovalDenied.type: .denied(try EventCoding.decode(ApprovalDenied.self, from: data))
        case ApprovalExpired.type: .expired(try EventCoding.decode(ApprovalExpired.self, from: data))
        case ApprovalConsumed.type: .consumed(try EventCoding.decode(ApprovalConsumed.self, from: data))
        default: nil
        }
    }

    public var type: String {
        switch self {
        case .requested: ApprovalRequested.type
        case .granted: ApprovalGranted.type
        case .denied: ApprovalDenied.type
        case .expired: ApprovalExpired.type
        case .consumed: ApprovalConsumed.type
        }
    }

    public var approvalID: UUID {
        switch self {
        case .requested(let event): event.approvalID
        case .granted(let event): event.approvalID
        case .denied(let event): event.approvalID
        case .expired(let event): event.approvalID
        case .consumed(let event): event.approvalID
        }
    }

    public func encoded() throws -> [UInt8] {
        switch self {
        case .requested(let event): try EventCoding.encode(event)
        case .granted(let event): try EventCoding.encode(event)
        case .denied(let event): try EventCoding.encode(event)
        case .expired(let event): try EventCoding.encode(event)
        case .consumed(let event): try EventCoding.encode(event)
        }
    }
}

/// What makes two calls "identical" for an approval: the same agent asking the same server's same tool with the
/// same arguments under the same policy version.
public struct ApprovalFingerprint: Sendable, Hashable, CustomStringConvertible {
    public var agent: String
    public var server: String
    public var tool: String
    public var argumentsHash: String
    public var policyHash: String

    public init(agent: String, server: String, tool: String, argumentsHash: String, policyHash: String) {
        self.agent = agent
        self.server = server
        self.tool = tool
        self.argumentsHash = argumentsHash
        self.policyHash = policyHash
    }

    public var description: String { [agent, server, tool, argumentsHash, policyHash].joined(separator: "\u{1F}") }
}
