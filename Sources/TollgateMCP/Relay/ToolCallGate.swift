import Foundation
import TollgateCore
import Tracing

/// The decision point the relay consults for every `tools/call` and every `tools/list` result.
///
/// The server implements it over the policy and the event log; tests implement it in memory. `decide` never throws:
/// a gate that cannot decide, or cannot record its decision, refuses the call and says why (fail closed).
public protocol ToolCallGate: Sendable {
    /// Whether `tool` is hidden on `server`: absent from `tools/list`, and answered as unknown on `tools/call`.
    func isHidden(tool: String, server: String) -> Bool
    /// Decides one call and records the decision before returning.
    func decide(_ request: ToolCallRequest) async -> ToolCallVerdict
    /// Records how a forwarded call ended (and gives back its counter reservations when it provably did not run:
    /// ``ToolCallOutcome/releasesReservations``).
    func complete(_ ticket: ToolCallTicket, outcome: ToolCallOutcome) async
    /// See the extension: takes note of an upstream's tool listing (the tool inventory).
    func observe(listed definitions: [(name: String, bytes: [UInt8])], server: String, complete: Bool)
    /// See the extension: what an agent's `tools/list` shows instead of what the upstream listed.
    func present(listed definitions: [(name: String, bytes: [UInt8])], server: String, complete: Bool) async -> [String: ToolPresentation]
}

extension ToolCallGate {
    /// The upstream `server` listed these tools (each the tool object as sent); `complete`: the whole list, every page.
    /// Must return at once (the listing is answered meanwhile). The default takes no note.
    public func observe(listed definitions: [(name: String, bytes: [UInt8])], server: String, complete: Bool) {}

    /// An agent's `tools/list` page: takes note of it (``observe(listed:server:complete:)``) and says which tools the
    /// agent is shown otherwise than listed (a pinned definition in place of a changed one, or nothing for a tool with
    /// no accepted definition). The default shows every tool as listed.
    public func present(listed definitions: [(name: String, bytes: [UInt8])], server: String, complete: Bool) async -> [String: ToolPresentation] {
        observe(listed: definitions, server: server, complete: complete)
        return [:]
    }
}

/// One `tools/call` as the relay read it.
public struct ToolCallRequest: Sendable {
    public var identity: SessionIdentity
    public var tool: String
    public var arguments: JSONValue
    /// The tool as the upstream lists it, when known (for risk classification).
    public var descriptor: ToolDescriptor?
    /// Why the upstream's tool list could not be had, when it could not: the gate records the call as refused for it
    /// (the relay refuses it whatever the gate answers).
    public var catalogUnavailable: String?
    public var requestID: JSONRPCID

    /// Why this call is refused for want of the tool list, in words for the log and the agent.
    public var catalogRefusal: String? {
        catalogUnavailable.map {
            "the server's tool list could not be read (\($0)), and every call is decided against it; nothing was sent to the server"
        }
    }
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
    /// What let the call through: `allow`, or `approved` for a call released by an approval (for the call's log line).
    public var decision: String
    /// The span of the upstream call (traces, docs/operating.md): started as the call is sent, ended with its outcome.
    public var span: (any Span)?

    public init(
        callID: UUID, identity: SessionIdentity, tool: String, reservations: [CounterReservation], forwardedAt: ContinuousClock.Instant = .now,
        decision: String = "allow"
    ) {
        self.decision = decision
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
    /// The call was never written to the upstream: it could not be started or reached, its connection had closed
    /// before the request was written, or the request id was already in use.
    case notSent(String)
    /// The upstream failed after the request was written, or perhaps while it was: an HTTP status instead of an
    /// answer, the connection dropped or the child exited before answering, or it wrote something unusable.
    case transportError(String)
    /// The agent cancelled the call.
    case cancelled
    /// The upstream did not answer in time.
    case timedOut

    /// `success`, `tool_error`, `rpc_error`, `not_sent`, `transport_error`, `cancelled` or `timed_out`.
    public var name: String {
        switch self {
        case .success: "success"
        case .toolError: "tool_error"
        case .rpcError: "rpc_error"
        case .notSent: "not_sent"
        case .transportError: "transport_error"
        case .cancelled: "cancelled"
        case .timedOut: "timed_out"
        }
    }

    /// The JSON-RPC errors by which an upstream says that it did not run a call: -32601 (method not found) and
    /// -32602 (invalid params, which MCP servers also answer for an unknown tool).
    public static let notRunCodes: Set<Int> = [-32601, -32602]

    /// Whether the call's counter reservations are given back: only when the call provably did not run upstream.
    /// That is a call never written to the upstream (`notSent`), or one the upstream refused with an error that
    /// means it did not run (``notRunCodes``). Everything else keeps the quota: a failure after the request was
    /// written (an HTTP 5xx, a dropped connection, a child that died mid-call), a time-out, a cancellation, any other
    /// JSON-RPC error and a tool error may all follow a call that ran, and a refund would let an agent repeat a
    /// side-effecting call without limit by making it fail.
    public var releasesReservations: Bool {
        switch self {
        case .notSent: true
        case .rpcError(let code): Self.notRunCodes.contains(code)
        case .success, .toolError, .transportError, .cancelled, .timedOut: false
        }
    }

    /// The outcome of a failure to send a call: `notSent` when the error says nothing was written, else
    /// `transportError`.
    public static func sendFailed(_ error: UpstreamError) -> ToolCallOutcome {
        error.notSent ? .notSent(error.description) : .transportError(error.description)
    }
}

/// What becomes of a `tools/call` once screened: an answer made at once, or a ticket to forward it with.
enum ScreenedCall {
    case answer([UInt8])
    case forward(ToolCallTicket)
}

/// The `name` and `arguments` of a `tools/call`, read from the very bytes that go upstream. The message refuses a
/// repeated key in any object, so no peer can read another name or other arguments from them.
struct ToolCallParams {
    var name: String
    var arguments: JSONValue

    /// The call's parameters, or the JSON-RPC error (`-32602`) that refuses the request.
    static func read(_ message: JSONRPCMessage, id: JSONRPCID) -> Result<ToolCallParams, RefusedCall> {
        func invalid(_ why: String) -> Result<ToolCallParams, RefusedCall> {
            .failure(RefusedCall(bytes: JSONRPCWriter.error(id: id, code: -32602, message: "Invalid params: \(why)")))
        }
        guard case .object(let params)? = message.decodedParams() else { return invalid("tools/call needs `params`, an object") }
        guard case .string(let name)? = params["name"], !name.isEmpty else { return invalid("tools/call needs `params.name`, a string") }
        switch params["arguments"] {
        case nil, .null?: return .success(ToolCallParams(name: name, arguments: .object([:])))
        case .object?: return .success(ToolCallParams(name: name, arguments: params["arguments"]!))
        default: return invalid("`params.arguments` must be an object")
        }
    }
}

/// A request answered by the relay itself, with these bytes.
struct RefusedCall: Error {
    var bytes: [UInt8]
}

extension ToolCallGate {
    /// Screens one `tools/call` the same way in sessions and stateless requests. Its name and arguments are read once,
    /// here, from the bytes that are forwarded. A call is decided against the upstream's tool list or not at all: with
    /// no list (`catalog` unavailable) it is refused and says why. A tool the upstream does not list is unknown without
    /// a decision; a hidden one is decided, and so recorded, by the gate and then answered exactly like an unknown one
    /// whatever the gate said (even when it could not record), so its existence does not leak.
    /// `resultType` tags refusals as protocol 2026-07-28 requires.
    func screen(
        _ message: JSONRPCMessage, id: JSONRPCID, identity: SessionIdentity, catalog: ToolCatalog, resultType: Bool,
        progress: (@Sendable (HeldCall.Progress) -> Void)? = nil
    ) async -> ScreenedCall {
        let call: ToolCallParams
        switch ToolCallParams.read(message, id: id) {
        case .success(let read): call = read
        case .failure(let refused): return .answer(refused.bytes)
        }
        let tools: [String: ToolDescriptor]
        switch catalog {
        case .listed(let listed): tools = listed
        case .unavailable(let why):
            // Recorded by the gate as refused; refused here whatever the gate says, so no gate can skip the rule.
            var request = ToolCallRequest(identity: identity, tool: call.name, arguments: call.arguments, descriptor: nil, requestID: id)
            request.catalogUnavailable = why
            let refusal = "Tollgate refused this call to `\(call.name)`: \(request.catalogRefusal ?? why)."
            switch await decide(request) {
            case .refuse(let text, let meta, let structured):
                return .answer(JSONRPCWriter.toolError(id: id, text: text, meta: meta, structured: structured, resultType: resultType))
            case .forward(let ticket):
                await complete(ticket, outcome: .cancelled)
            case .unknownTool:
                break
            }
            return .answer(JSONRPCWriter.toolError(id: id, text: refusal, meta: [:], resultType: resultType))
        }
        let unknown = JSONRPCWriter.error(id: id, code: -32602, message: "Unknown tool: \(call.name)")
        let hidden = isHidden(tool: call.name, server: identity.server)
        guard tools[call.name] != nil || hidden else { return .answer(unknown) }
        let request = ToolCallRequest(
            identity: identity, tool: call.name, arguments: call.arguments, descriptor: tools[call.name], requestID: id, progress: progress)
        let verdict = await decide(request)
        if hidden {
            if case .forward(let ticket) = verdict { await complete(ticket, outcome: .cancelled) }
            return .answer(unknown)
        }
        switch verdict {
        case .forward(let ticket): return .forward(ticket)
        case .refuse(let text, let meta, let structured):
            return .answer(JSONRPCWriter.toolError(id: id, text: text, meta: meta, structured: structured, resultType: resultType))
        case .unknownTool: return .answer(unknown)
        }
    }
}
