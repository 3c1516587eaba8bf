/// A remote MCP server reached over HTTP, with headers sent on every request (credentials, usually).
public struct HTTPUpstream: Sendable, Equatable {
    /// An `http` or `https` URL.
    public var url: String
    public var transport: HTTPTransport
    /// Headers in the order written; names are distinct ignoring case.
    public var headers: [HTTPHeader]

    public init(url: String, transport: HTTPTransport = .streamableHTTP, headers: [HTTPHeader] = []) {
        self.url = url
        self.transport = transport
        self.headers = headers
    }
}
