import NIOHTTP1

/// One MCP session opened by the handshake: the headers every later request of the session carries.
struct MCPSession {
    /// The `Mcp-Session-Id` the server gave in its `initialize` response; `nil` for a server without sessions.
    let id: String?
    /// The version the server chose in its `initialize` result, sent as `MCP-Protocol-Version`.
    let protocolVersion: String
    let headers: HTTPHeaders

    init(id: String?, protocolVersion: String, baseHeaders: HTTPHeaders) {
        self.id = id
        self.protocolVersion = protocolVersion
        var headers = baseHeaders
        headers.add(name: "MCP-Protocol-Version", value: protocolVersion)
        if let id { headers.add(name: "Mcp-Session-Id", value: id) }
        self.headers = headers
    }
}
