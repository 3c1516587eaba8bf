import Foundation
import TollgateCore
import TollgateMCP

extension ToolCallDecided {
    /// The decision the gate records for `request`: who asked for what (the arguments stored as `storage` says, and
    /// their hash), and the ruling. The one place a `ToolCallDecided` is made.
    init(_ request: ToolCallRequest, callID: UUID, ruling: GateRuling, category: RiskCategory?, storage: ArgumentStorage, micros: Int) {
        let identity = request.identity
        self.init(
            callID: callID, agent: identity.agent, grant: identity.grant, session: identity.session, server: identity.server, tool: request.tool,
            requestID: request.requestID.description, arguments: storage.stored(request.arguments),
            argumentsHash: ToolCallDecided.hash(arguments: request.arguments), argumentsStorage: storage.rawValue, decision: ruling.decision,
            reason: ruling.reason, retryAfter: ruling.retryAfter, rule: ruling.rule, policyHash: ruling.policyHash, category: category?.rawValue,
            reservations: ruling.reservations.map(ToolCallDecided.Reservation.init), decisionMicros: micros, decidedAt: Date())
    }
}
