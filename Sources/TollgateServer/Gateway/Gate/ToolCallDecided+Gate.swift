import Foundation
import TollgateCore
import TollgateMCP

extension ToolCallDecided {
    /// The decision the gate records for `request`: who asked for what (the arguments stored as `storage` says, and
    /// their hash), and the ruling. The one place a `ToolCallDecided` is made.
    ///
    /// A refused call (anything but forwarded or held) keeps bounded arguments: over `maxRefusedArgumentBytes` as
    /// stored, only their hash, size and top-level keys (`argumentsStorage` `summary`), and its request id and tool
    /// name cut to 256 bytes. A forwarded or held call keeps them as `storage` says (a reviewer reads them).
    init(
        _ request: ToolCallRequest, callID: UUID, ruling: GateRuling, category: RiskCategory?, storage: ArgumentStorage, micros: Int,
        maxRefusedArgumentBytes: Int
    ) {
        let identity = request.identity
        let canonical = Array(request.arguments.canonicalJSON.utf8)
        self.init(
            callID: callID, agent: identity.agent, grant: identity.grant, session: identity.session, server: identity.server, tool: request.tool,
            requestID: request.requestID.description, arguments: storage.stored(request.arguments),
            argumentsHash: ToolCallDecided.hash(canonical: canonical), argumentsStorage: storage.rawValue, decision: ruling.decision,
            reason: ruling.reason, retryAfter: ruling.retryAfter, rule: ruling.rule, policyHash: ruling.policyHash, category: category?.rawValue,
            reservations: ruling.reservations.map(ToolCallDecided.Reservation.init), decisionMicros: micros, decidedAt: Date())
        definitionHash = request.descriptor?.definitionHash
        switch ruling.action {
        case .forward, .hold: break
        case .refuse, .unknownTool: bound(arguments: request.arguments, canonicalBytes: canonical.count, maxBytes: maxRefusedArgumentBytes)
        }
    }
}
