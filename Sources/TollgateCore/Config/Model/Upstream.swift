/// How the gateway reaches an MCP server: a child process spoken to over stdin and stdout, or a URL.
public enum Upstream: Sendable, Equatable {
    case stdio(StdioUpstream)
    case http(HTTPUpstream)
}
