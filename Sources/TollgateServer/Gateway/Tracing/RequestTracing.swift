import HTTPTypes
import Hummingbird
import Instrumentation
import TollgateCore
import TollgateMCP
import Tracing

/// The span of each agent request (traces, docs/operating.md): the W3C trace context is taken from the request's
/// `traceparent` header, or, without one, from the message's `params._meta.traceparent` (where MCP carries it); the
/// decision's and the upstream call's spans are its children. Attributes follow the OpenTelemetry semantic conventions
/// for MCP, JSON-RPC and HTTP servers.
enum RequestTracing {
    /// The most bytes of `traceparent` or `tracestate` read from a message's `_meta` (the W3C limits are 55 and 512).
    static let maxMetaValueBytes = 512

    static func traced(
        _ message: JSONRPCMessage, request: Request, server: String, agent: String, _ body: () async throws -> Response
    ) async throws -> Response {
        // Without traces (``CallTracing``) nothing is read for a span, not even `_meta`.
        guard CallTracing.isOn else { return try await body() }
        var parent = ServiceContext.current ?? .topLevel
        if request.headers[HTTPField.Name("traceparent")!] != nil {
            InstrumentationSystem.instrument.extract(request.headers, into: &parent, using: HeaderCarrier())
        } else if let meta = meta(of: message) {
            InstrumentationSystem.instrument.extract(meta, into: &parent, using: MetaCarrier())
        }
        let method = message.method ?? "response"
        let tool = method == "tools/call" ? message.paramsString("name") : nil
        let span = startSpan(tool.map { "\(method) \($0)" } ?? method, context: parent, ofKind: .server)
        defer { span.end() }
        if span.isRecording {
            span.attributes["mcp.method.name"] = method
            span.attributes["rpc.system"] = "jsonrpc"
            span.attributes["rpc.method"] = method
            if let id = message.id { span.attributes["jsonrpc.request.id"] = id.description }
            if let tool { span.attributes["gen_ai.tool.name"] = tool }
            if let session = request.headers[.mcpSessionID] { span.attributes["mcp.session.id"] = session }
            span.attributes["http.request.method"] = "POST"
            span.attributes["url.path"] = request.uri.path
            span.attributes["tollgate.server"] = server
            span.attributes["tollgate.agent"] = agent
        }
        let response = try await ServiceContext.withValue(span.context) { try await body() }
        if span.isRecording { span.attributes["http.response.status_code"] = Int(response.status.code) }
        if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
        return response
    }

    /// `params._meta.traceparent` and `tracestate`, when they are strings of sane size.
    static func meta(of message: JSONRPCMessage) -> [String: String]? {
        guard case .object(let params)? = message.decodedParams(), case .object(let meta)? = params["_meta"] else { return nil }
        var found: [String: String] = [:]
        for key in ["traceparent", "tracestate"] {
            if case .string(let value)? = meta[key], value.utf8.count <= maxMetaValueBytes { found[key] = value }
        }
        return found["traceparent"] == nil ? nil : found
    }

    struct HeaderCarrier: Extractor {
        func extract(key: String, from headers: HTTPFields) -> String? {
            HTTPField.Name(key).flatMap { headers[$0] }
        }
    }

    struct MetaCarrier: Extractor {
        func extract(key: String, from meta: [String: String]) -> String? { meta[key] }
    }
}
