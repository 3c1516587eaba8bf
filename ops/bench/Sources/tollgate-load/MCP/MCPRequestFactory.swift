import NIOCore
import NIOHTTP1

/// Builds the HTTP requests a Streamable HTTP client sends for protocol 2025-11-25, as the Python SDK sends them:
/// `initialize` without a version header, then `MCP-Protocol-Version` and `Mcp-Session-Id` on everything else.
///
/// ```swift
/// let factory = MCPRequestFactory(configuration: configuration)
/// let request = factory.toolCall(id: 42, session: session)  // POST, body {"jsonrpc":"2.0","id":42,"method":"tools/call",...}
/// ```
struct MCPRequestFactory {
    /// `Host`, `Accept`, `Content-Type`, `User-Agent` and the `--header`s.
    let baseHeaders: HTTPHeaders
    private let path: String
    private let protocolVersion: String
    /// The tool call body around its id: `{"jsonrpc":"2.0","id":` and `,"method":"tools/call","params":{...}}`.
    private let toolCallPrefix: [UInt8]
    private let toolCallSuffix: [UInt8]
    private let allocator = ByteBufferAllocator()

    init(configuration: LoadConfiguration) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: configuration.target.authority)
        headers.add(name: "User-Agent", value: "tollgate-load")
        headers.add(name: "Accept", value: "application/json, text/event-stream")
        headers.add(name: "Content-Type", value: "application/json")
        for header in configuration.headers {
            headers.replaceOrAdd(name: header.name, value: header.value)
        }
        baseHeaders = headers
        path = configuration.target.path
        protocolVersion = configuration.protocolVersion
        toolCallPrefix = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
        var suffix = #","method":"tools/call","params":{"name":"#
        JSONValue.writeString(configuration.tool, to: &suffix)
        suffix += #","arguments":"# + configuration.arguments + "}}"
        toolCallSuffix = Array(suffix.utf8)
    }

    func initialize(id: Int) -> HTTPRequest {
        let body: JSONValue = .object([
            ("jsonrpc", .string("2.0")),
            ("id", .integer(id)),
            ("method", .string("initialize")),
            (
                "params",
                .object([
                    ("protocolVersion", .string(protocolVersion)),
                    ("capabilities", .object([])),
                    ("clientInfo", .object([("name", .string("tollgate-load")), ("version", .string("1.0"))])),
                ])
            ),
        ])
        return HTTPRequest(method: .POST, path: path, headers: baseHeaders, body: ByteBuffer(string: body.serialized), jsonRPCID: id)
    }

    func initialized(session: MCPSession) -> HTTPRequest {
        let body = #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        return HTTPRequest(method: .POST, path: path, headers: session.headers, body: ByteBuffer(string: body), jsonRPCID: nil)
    }

    func toolCall(id: Int, session: MCPSession) -> HTTPRequest {
        var body = allocator.buffer(capacity: toolCallPrefix.count + toolCallSuffix.count + 20)
        body.writeBytes(toolCallPrefix)
        body.writeString(String(id))
        body.writeBytes(toolCallSuffix)
        return HTTPRequest(method: .POST, path: path, headers: session.headers, body: body, jsonRPCID: id)
    }

    /// Ends the session, as a client does on close.
    func delete(session: MCPSession) -> HTTPRequest {
        var headers = session.headers
        headers.remove(name: "Content-Type")
        return HTTPRequest(method: .DELETE, path: path, headers: headers, body: nil, jsonRPCID: nil)
    }
}
