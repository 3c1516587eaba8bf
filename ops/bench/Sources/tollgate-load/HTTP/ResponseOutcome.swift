/// What one request came to, as an MCP client would see it.
enum ResponseOutcome: Sendable {
    /// The JSON-RPC response with the request's id arrived with a `result` (which may say `isError: true`).
    case result(JSONValue)
    /// The JSON-RPC response with the request's id arrived with an `error`.
    case rpcError(code: Int, message: String)
    /// A 2xx answer to a request that expects no JSON-RPC response (a notification, a `DELETE`).
    case acknowledged(status: Int)
    /// An HTTP status outside 2xx.
    case httpError(status: Int)
    /// A 2xx answer that is not what the protocol allows: wrong content type, bad JSON, no response with the id.
    case malformed(String)
    /// No answer before the call's deadline; the connection was closed.
    case timedOut
    /// The connection failed or was closed before the answer was complete.
    case connectionFailed(String)
}

extension ResponseOutcome: CustomStringConvertible {
    var description: String {
        switch self {
        case .result(let result): "result \(result.serialized)"
        case .rpcError(let code, let message): "JSON-RPC error \(code): \(message)"
        case .acknowledged(let status): "HTTP \(status)"
        case .httpError(let status): "HTTP \(status)"
        case .malformed(let reason): "malformed response: \(reason)"
        case .timedOut: "no answer before the time-out"
        case .connectionFailed(let reason): "connection failed: \(reason)"
        }
    }
}
