/// The MCP transport a remote server speaks: Streamable HTTP (the current one) or the older HTTP with Server-Sent Events.
public enum HTTPTransport: String, Sendable, Hashable, CaseIterable {
    case streamableHTTP = "streamable-http"
    case sse
}
