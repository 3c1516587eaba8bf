import Foundation
import TollgateCore

/// Who is behind a relay session: the agent (from its key), its grant, the session id and the upstream server.
public struct SessionIdentity: Sendable, Hashable {
    public var agent: String
    public var grant: String
    public var session: String
    public var server: String

    public init(agent: String, grant: String, session: String, server: String) {
        self.agent = agent
        self.grant = grant
        self.session = session
        self.server = server
    }
}

/// The decision point the relay consults for every `tools/call` and every `tools/list` result.
///
/// The server implements it over the policy and the event log; tests implement it in memory. `decide` never throws:
/// a gate that cannot decide, or cannot record its decision, refuses the call and says why (fail closed).
public protocol ToolCallGate: Sendable {
    /// Whether `tool` is hidden on `server`: absent from `tools/list`, and answered as unknown on `tools/call`.
    func isHidden(tool: String, server: String) -> Bool
    /// Decides one call and records the decision before returning.
    func decide(_ request: ToolCallRequest) async -> ToolCallVerdict
    /// Records how a forwarded call ended (and gives back its counter reservations when it failed).
    func complete(_ ticket: ToolCallTicket, outcome: ToolCallOutcome) async
}

/// One `tools/call` as the relay read it.
public struct ToolCallRequest: Sendable {
    public var identity: SessionIdentity
    public var tool: String
    public var arguments: JSONValue
    /// The tool as the upstream lists it, when known (for risk classification).
    public var descriptor: ToolDescriptor?
    public var requestID: JSONRPCID
    /// Tells the agent how a held call is getting on (`notifications/progress`), when it asked for progress and the
    /// transport can carry it.
    public var progress: (@Sendable (HeldCall.Progress) -> Void)?

    public init(
        identity: SessionIdentity, tool: String, arguments: JSONValue, descriptor: ToolDescriptor?, requestID: JSONRPCID,
        progress: (@Sendable (HeldCall.Progress) -> Void)? = nil
    ) {
        self.identity = identity
        self.tool = tool
        self.arguments = arguments
        self.descriptor = descriptor
        self.requestID = requestID
        self.progress = progress
    }
}

/// What the gate decided.
public enum ToolCallVerdict: Sendable {
    /// Forward the call; report its end with the ticket.
    case forward(ToolCallTicket)
    /// Answer with a `CallToolResult` with `isError: true`: `text` for the agent, `meta` in the result's `_meta`, and
    /// `structured` as its `structuredContent` (a held call's pending status).
    case refuse(text: String, meta: [String: JSONValue], structured: JSONValue? = nil)
    /// Answer as for a tool that does not exist (a hidden tool).
    case unknownTool
}

/// A forwarded call, as the gate needs it back when the call ends.
public struct ToolCallTicket: Sendable {
    public var callID: UUID
    public var identity: SessionIdentity
    public var tool: String
    public var reservations: [CounterReservation]
    public var forwardedAt: ContinuousClock.Instant

    public init(
        callID: UUID, identity: SessionIdentity, tool: String, reservations: [CounterReservation], forwardedAt: ContinuousClock.Instant = .now
    ) {
        self.callID = callID
        self.identity = identity
        self.tool = tool
        self.reservations = reservations
        self.forwardedAt = forwardedAt
    }
}

/// How a forwarded call ended.
public enum ToolCallOutcome: Sendable, Equatable {
    /// A result without `isError`.
    case success
    /// A result with `isError: true` (the tool ran and reported a failure).
    case toolError
    /// A JSON-RPC error from the upstream.
    case rpcError(code: Int)
    /// The upstream could not be reached, died, or wrote something unusable.
    case transportError(String)
    /// The agent cancelled the call.
    case cancelled
    /// The upstream did not answer in time.
    case timedOut

    /// `success`, `tool_error`, `rpc_error`, `transport_error`, `cancelled` or `timed_out`.
    public var name: String {
        switch self {
        case .success: "success"
        case .toolError: "tool_error"
        case .rpcError: "rpc_error"
        case .transportError: "transport_error"
        case .cancelled: "cancelled"
        case .timedOut: "timed_out"
        }
    }

    /// Whether the call's counter reservations are given back: the call did not run, or failed before it could.
    public var releasesReservations: Bool {
        switch self {
        case .rpcError, .transportError: true
        case .success, .toolError, .cancelled, .timedOut: false
        }
    }
}

/// What becomes of a `tools/call` once screened: an answer made at once, or a ticket to forward it with.
enum ScreenedCall {
    case answer([UInt8])
    case forward(ToolCallTicket)
}

extension ToolCallGate {
    /// Screens one `tools/call` (by its tool name), the same way in sessions and stateless requests: a tool
    /// the upstream does not list (per `catalog`, when known) is unknown without a decision; a hidden one is decided,
    /// and so recorded, by the gate and answered exactly like an unknown one, so its existence does not leak.
    /// `resultType` tags refusals as protocol 2026-07-28 requires.
    func screen(
        name: String, arguments: JSONValue, id: JSONRPCID, identity: SessionIdentity, catalog: [String: ToolDescriptor]?, resultType: Bool,
        progress: (@Sendable (HeldCall.Progress) -> Void)? = nil
    ) async -> ScreenedCall {
        let unknown = JSONText.error(id: id, code: -32602, message: "Unknown tool: \(name)")
        let listed = catalog.map { $0[name] != nil } ?? true
        if !listed, !isHidden(tool: name, server: identity.server) { return .answer(unknown) }
        let request = ToolCallRequest(
            identity: identity, tool: name, arguments: arguments, descriptor: catalog?[name], requestID: id, progress: progress)
        switch await decide(request) {
        case .forward(let ticket): return .forward(ticket)
        case .refuse(let text, let meta, let structured):
            return .answer(JSONText.toolError(id: id, text: text, meta: meta, structured: structured, resultType: resultType))
        case .unknownTool: return .answer(unknown)
        }
    }

}
