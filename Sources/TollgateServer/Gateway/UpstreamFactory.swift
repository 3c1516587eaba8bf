import Logging
import TollgateCore
import TollgateMCP

/// Opens upstream connections as the configuration describes them: a child process per session for stdio servers
/// (stdio carries one client's session, and a private child keeps one agent's state away from another's), or an
/// HTTP session per relay session for remote servers, all through one shared HTTP client.
struct UpstreamFactory: Sendable {
    let clients: UpstreamHTTPClients
    let maxMessageBytes: Int
    let logger: Logger

    func connector(for server: ServerConfig) -> @Sendable () async throws -> any UpstreamConnection {
        var logger = logger
        logger[metadataKey: "server"] = "\(server.name)"
        let maxMessageBytes = maxMessageBytes
        switch server.upstream {
        case .stdio(let stdio):
            return { [logger] in try StdioUpstreamConnection.start(stdio, maxMessageBytes: maxMessageBytes, logger: logger) }
        case .http(let http):
            let endpoint = HTTPEndpoint(
                url: http.url, transport: http.transport == .sse ? .sse : .streamableHTTP,
                headers: http.headers.map { (name: $0.name, value: $0.value) })
            let clients = clients
            return { [logger] in try await HTTPUpstreamConnection.connect(endpoint, http: clients, maxMessageBytes: maxMessageBytes, logger: logger)
            }
        }
    }
}
