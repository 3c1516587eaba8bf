/// Turns a ``SourceNode`` tree into a ``GatewayConfig``, collecting every problem instead of stopping at the first,
/// with the same checks and messages as ``PolicyDecoder`` (see ``SourceDecoding``).
///
/// String values have their `${NAME}` references replaced from `environment` as they are read (see
/// ``EnvironmentSubstitution``), so a problem with a reference names the field it is in. Keys are never substituted.
struct GatewayConfigDecoder: SourceDecoding {
    let file: String
    /// The configuration file's directory, against which relative paths resolve.
    let directory: String
    let environment: [String: String]
    /// Which OS users and groups exist (`servers.*.user`, `group`).
    let accounts: SystemAccounts
    /// The most bytes substituted values may add up to, so a few references to a large variable cannot make the
    /// configuration cost gigabytes.
    let substitutionBudget: Int
    var diagnostics: [SourceDiagnostic] = []
    var substitutedBytes = 0
    var substitutionBudgetExceeded = false

    init(file: String, directory: String, environment: [String: String], limits: SourceLimits, accounts: SystemAccounts = .system) {
        self.file = file
        self.directory = directory
        self.environment = environment
        self.accounts = accounts
        self.substitutionBudget = 4 * limits.maxBytes
    }

    static let rootKeys = [
        "listen", "database", "data_directory", "allowed_origins", "logging", "limits", "store_arguments", "servers", "agents",
        "reviewers", "webhooks", "public_url", "slack", "ui", "tracing",
    ]
    static let tracingKeys = ["endpoint", "service_name", "sample_percent"]
    static let loggingKeys = ["level", "format"]
    static let limitKeys = [
        "max_body_bytes", "max_held_calls", "max_sessions", "upstream_timeout", "max_sessions_per_agent", "session_idle_timeout",
        "max_connections", "header_timeout", "body_timeout", "connection_idle_timeout",
        "max_refused_argument_bytes", "max_recorded_refusals_per_minute", "max_pending_approvals", "decision_deadline",
        "max_buffered_bytes", "max_listen_streams_per_agent",
    ]
    static let serverKeys = [
        "command", "args", "env", "cwd", "user", "group", "url", "transport", "headers", "policy", "store_arguments",
        "store_arguments_by_tool", "commit", "commit_by_tool",
    ]
    static let stdioKeys = ["args", "env", "cwd", "user", "group"]
    static let httpKeys = ["transport", "headers"]
    static let agentKeys = ["id", "grant", "key_hash"]
    static let reviewerKeys = ["id", "role", "token_hash", "slack_user_id"]

    static let requiredFieldHelp: [String: String] = [
        "policy": "the server's policy file, such as policies/stripe.yaml (relative to this file's directory)",
        "id": "a name for the agent: 1 to 63 of a-z 0-9 _ -, such as ci-bot",
        "key_hash": "sha256: and 64 lowercase hex digits, the hash of the agent's key",
        "token_hash": "sha256: and 64 lowercase hex digits, the hash of the reviewer's token (tollgate keys new NAME --reviewer)",
    ]

    // MARK: The document

    mutating func decodeConfig(_ root: SourceNode) -> GatewayConfig? {
        if case .null = root.value { return GatewayConfig() }
        guard let fields = members(of: root, at: "", allowed: Self.rootKeys, required: []) else { return nil }
        var config = GatewayConfig()
        if let node = Self.value(fields, "listen"),
            let listen = text(node, at: "listen", allowed: "host:port, such as \"127.0.0.1:8420\"")
        {
            if let problem = AddressSyntax.listenProblem(listen) {
                report(
                    .invalidValue, at: node.location, "listen", problem.message,
                    allowed: "host:port or [IPv6]:port with a port from 0 to 65535, such as 127.0.0.1:8420, 0.0.0.0:8420 or [::1]:8420",
                    suggestion: problem.suggestion)
            } else {
                config.listen = listen
            }
        }
        if let node = Self.value(fields, "database") { config.database = database(node) }
        if let node = Self.value(fields, "data_directory") { config.dataDirectory = path(node, at: "data_directory") }
        if let node = Self.value(fields, "allowed_origins") { config.allowedOrigins = decodeOrigins(node) }
        if let node = Self.value(fields, "logging") { config.logging = decodeLogging(node) }
        if let node = Self.value(fields, "tracing") { config.tracing = decodeTracing(node) }
        if let node = Self.value(fields, "limits") { config.limits = decodeLimits(node) }
        if let node = Self.value(fields, "store_arguments"), let storage = word(node, at: "store_arguments", as: ArgumentStorage.self) {
            config.storeArguments = storage
        }
        if let node = Self.value(fields, "servers") { config.servers = decodeServers(node, storeArguments: config.storeArguments) }
        if let node = Self.value(fields, "agents") { config.agents = decodeAgents(node) }
        if let node = Self.value(fields, "reviewers") { config.reviewers = decodeReviewers(node, agents: config.agents) }
        if let node = Self.value(fields, "webhooks") { config.webhooks = decodeWebhooks(node, servers: config.servers) }
        if let node = Self.value(fields, "public_url"), let url = httpURL(node, at: "public_url", example: "https://tollgate.example.com") {
            config.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        if let node = Self.value(fields, "slack") { config.slack = decodeSlack(node) }
        if let node = Self.value(fields, "ui") { config.ui = decodeReviewerPage(node) }
        return config
    }

    /// The value of an optional field; `nil` when the key is absent or its value is null (`key:` with nothing after it).
    static func value(_ fields: [String: SourceNode.Member], _ key: String) -> SourceNode? {
        guard let node = fields[key]?.value else { return nil }
        if case .null = node.value { return nil }
        return node
    }

    private mutating func database(_ node: SourceNode) -> String? {
        guard let text = text(node, at: "database") else { return nil }
        let allowed = "a PostgreSQL URL (postgresql://user@host:5432/tollgate) or key=value connection string (host=... dbname=...)"
        let message: String?
        if text.allSatisfy(\.isWhitespace) {
            message = "the database connection string is empty; leave `database` out to use the embedded cluster"
        } else if text.unicodeScalars.contains("\0") {
            message = "the database connection string contains a NUL character"
        } else if let schemeEnd = text.range(of: "://") {
            let scheme = text[..<schemeEnd.lowerBound]
            message = scheme == "postgresql" || scheme == "postgres" ? nil : "\(AddressSyntax.quoted(text)) is not a PostgreSQL URL"
        } else {
            message = text.contains("=") ? nil : "\(AddressSyntax.quoted(text)) is neither a PostgreSQL URL nor a connection string"
        }
        if let message {
            report(.invalidValue, at: node.location, "database", message, allowed: allowed)
            return nil
        }
        return text
    }

    private mutating func decodeOrigins(_ node: SourceNode) -> [String] {
        guard let items = list(node, at: "allowed_origins") else { return [] }
        var origins: [String] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = FieldPath.index("allowed_origins", index)
            guard let origin = text(item, at: path) else { continue }
            if let problem = AddressSyntax.originProblem(origin) {
                report(
                    .invalidValue, at: item.location, path, problem.message,
                    allowed: "scheme://host or scheme://host:port, such as http://localhost:3000 or https://console.example.com",
                    suggestion: problem.suggestion)
            } else if let first = seen[origin] {
                report(
                    .duplicateEntry, at: item.location, path, "\(AddressSyntax.quoted(origin)) is already listed at allowed_origins[\(first)]",
                    allowed: "each origin once")
            } else {
                seen[origin] = index
                origins.append(origin)
            }
        }
        return origins
    }

    private mutating func decodeLogging(_ node: SourceNode) -> LoggingSettings {
        var logging = LoggingSettings()
        guard let fields = members(of: node, at: "logging", allowed: Self.loggingKeys, required: []) else { return logging }
        if let value = Self.value(fields, "level"), let level = word(value, at: "logging.level", as: LogLevel.self) {
            logging.level = level.rawValue
        }
        if let value = Self.value(fields, "format"), let format = word(value, at: "logging.format", as: LogFormat.self) {
            logging.format = format
        }
        return logging
    }

    /// `tracing`: `endpoint` (required), `service_name`, `sample_percent`.
    private mutating func decodeTracing(_ node: SourceNode) -> TracingSettings? {
        guard let fields = members(of: node, at: "tracing", allowed: Self.tracingKeys, required: ["endpoint"]),
            let endpointNode = Self.value(fields, "endpoint"),
            let endpoint = httpURL(endpointNode, at: "tracing.endpoint", example: "http://127.0.0.1:4318")
        else { return nil }
        var tracing = TracingSettings(endpoint: endpoint)
        if let value = Self.value(fields, "service_name"), let name = text(value, at: "tracing.service_name") {
            if name.isEmpty || name.utf8.count > 100 || name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                report(
                    .invalidValue, at: value.location, "tracing.service_name",
                    "the service name must be 1 to 100 characters without control characters",
                    allowed: "a name such as tollgate or tollgate-eu")
            } else {
                tracing.serviceName = name
            }
        }
        if let value = Self.value(fields, "sample_percent"), let percent = integer(value, at: "tracing.sample_percent", in: 0...100, unit: "percent")
        {
            tracing.samplePercent = percent
        }
        return tracing
    }

    private mutating func decodeLimits(_ node: SourceNode) -> GatewayLimits {
        var limits = GatewayLimits()
        guard let fields = members(of: node, at: "limits", allowed: Self.limitKeys, required: []) else { return limits }
        if let value = Self.value(fields, "max_body_bytes"),
            let bytes = integer(value, at: "limits.max_body_bytes", in: GatewayLimits.bodyBytesRange, unit: "bytes (1 KiB to 64 MiB)")
        {
            limits.maxBodyBytes = bytes
        }
        if let value = Self.value(fields, "max_held_calls"),
            let count = integer(value, at: "limits.max_held_calls", in: GatewayLimits.countRange, unit: "calls")
        {
            limits.maxHeldCalls = count
        }
        if let value = Self.value(fields, "max_sessions"),
            let count = integer(value, at: "limits.max_sessions", in: GatewayLimits.countRange, unit: "sessions")
        {
            limits.maxSessions = count
        }
        if let value = Self.value(fields, "upstream_timeout"), let resolved = numeric(value, at: "limits.upstream_timeout"),
            let seconds = duration(resolved, at: "limits.upstream_timeout")
        {
            limits.upstreamTimeout = .seconds(seconds)
        }
        if let value = Self.value(fields, "max_buffered_bytes"),
            let bytes = integer(value, at: "limits.max_buffered_bytes", in: (1 << 20)...(1 << 40), unit: "bytes (1 MiB to 1 TiB)")
        {
            limits.maxBufferedBytes = bytes
        }
        if let value = Self.value(fields, "max_listen_streams_per_agent"),
            let count = integer(value, at: "limits.max_listen_streams_per_agent", in: GatewayLimits.countRange, unit: "streams")
        {
            limits.maxListenStreamsPerAgent = count
        }
        if let value = Self.value(fields, "max_sessions_per_agent"),
            let count = integer(value, at: "limits.max_sessions_per_agent", in: GatewayLimits.countRange, unit: "sessions")
        {
            limits.maxSessionsPerAgent = count
        }
        if let value = Self.value(fields, "max_connections"),
            let count = integer(value, at: "limits.max_connections", in: GatewayLimits.countRange, unit: "connections")
        {
            limits.maxConnections = count
        }
        let timeouts: [(String, WritableKeyPath<GatewayLimits, Duration>)] = [
            ("session_idle_timeout", \.sessionIdleTimeout), ("header_timeout", \.headerTimeout), ("body_timeout", \.bodyTimeout),
            ("connection_idle_timeout", \.connectionIdleTimeout), ("decision_deadline", \.decisionDeadline),
        ]
        for (key, path) in timeouts {
            if let value = Self.value(fields, key), let resolved = numeric(value, at: "limits.\(key)"),
                let seconds = duration(resolved, at: "limits.\(key)")
            {
                limits[keyPath: path] = .seconds(seconds)
            }
        }
        if let value = Self.value(fields, "max_refused_argument_bytes"),
            let bytes = integer(value, at: "limits.max_refused_argument_bytes", in: 256...(1 << 20), unit: "bytes (256 to 1 MiB)")
        {
            limits.maxRefusedArgumentBytes = bytes
        }
        if let value = Self.value(fields, "max_recorded_refusals_per_minute"),
            let count = integer(value, at: "limits.max_recorded_refusals_per_minute", in: 0...1_000_000, unit: "refusals")
        {
            limits.maxRecordedRefusalsPerMinute = count
        }
        if let value = Self.value(fields, "max_pending_approvals"),
            let count = integer(value, at: "limits.max_pending_approvals", in: GatewayLimits.countRange, unit: "approval requests")
        {
            limits.maxPendingApprovals = count
        }
        return limits
    }
}
