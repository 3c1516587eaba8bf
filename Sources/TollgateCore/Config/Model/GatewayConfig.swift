/// The gateway's configuration: where it listens, where it keeps its events, how it logs, its limits, the MCP servers
/// it fronts (each with its policy) and the agents allowed to call them.
///
/// Read it with ``GatewayConfigLoader``, which checks every field and reports every problem at once; the fields are
/// described in `docs/configuration.md`.
///
/// ```swift
/// let config = try GatewayConfigLoader.load(
///     data, fileName: "tollgate.yaml", directory: "/etc/tollgate", environment: ProcessInfo.processInfo.environment)
/// for server in config.servers { print(server.name, server.policyPath) }
/// ```
public struct GatewayConfig: Sendable, Equatable {
    /// The address to listen on, as written (`127.0.0.1:8420`, `[::1]:8420`); the server parses it.
    public var listen: String
    /// A libpq connection string or `postgresql://` URL; `nil` runs the embedded PostgreSQL cluster.
    public var database: String?
    /// The embedded cluster's data directory (absolute when the configuration's directory is); `nil` for its default.
    public var dataDirectory: String?
    /// `Origin` header values accepted besides none (browser pages allowed to call the gateway).
    public var allowedOrigins: [String]
    public var logging: LoggingSettings
    public var limits: GatewayLimits
    /// How much of each call's arguments the event log keeps, unless a server says otherwise.
    public var storeArguments: ArgumentStorage
    /// The upstream MCP servers, in the order the file lists them.
    public var servers: [ServerConfig]
    /// The agents that may connect, each with the hash of its key.
    public var agents: [AgentConfig]
    /// The people who may use the approvals API (`/v1`), each with the hash of their token.
    public var reviewers: [ReviewerConfig]
    /// Where reviewers are told about approval requests.
    public var webhooks: [WebhookConfig] = []
    /// The gateway's address as reviewers reach it, for links in notifications; `nil`: `http://` and `listen`.
    public var publicURL: String?
    /// The reviewer web page (`ui:`): how long its sessions last.
    public var ui = ReviewerPageSettings()
    /// The Slack app whose buttons decide approvals (`/integrations/slack/interactions`); `nil`: no buttons, no endpoint.
    public var slack: SlackConfig?
    /// OpenTelemetry traces (`tracing:`); `nil`: none.
    public var tracing: TracingSettings?

    public init(
        listen: String = "127.0.0.1:8420",
        database: String? = nil,
        dataDirectory: String? = nil,
        allowedOrigins: [String] = [],
        logging: LoggingSettings = LoggingSettings(),
        limits: GatewayLimits = GatewayLimits(),
        storeArguments: ArgumentStorage = .full,
        servers: [ServerConfig] = [],
        agents: [AgentConfig] = [],
        reviewers: [ReviewerConfig] = []
    ) {
        self.listen = listen
        self.database = database
        self.dataDirectory = dataDirectory
        self.allowedOrigins = allowedOrigins
        self.logging = logging
        self.limits = limits
        self.storeArguments = storeArguments
        self.servers = servers
        self.agents = agents
        self.reviewers = reviewers
    }

    /// The server with this name, if the configuration has one.
    public func server(named name: String) -> ServerConfig? {
        servers.first { $0.name == name }
    }
}
