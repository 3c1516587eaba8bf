/// One webhook endpoint: where reviewers are told about approval requests, signed as Standard Webhooks says.
///
/// ```yaml
/// webhooks:
///   - name: reviewers
///     url: https://hooks.example.com/tollgate
///     secrets: ["${TOLLGATE_WEBHOOK_SECRET}"]      # whsec_...; during a rotation, the new one and the old one
///     events: [approval.requested, approval.decided, approval.expired]
///     servers: [stripe]                           # only these servers' requests (default: all)
///     tools: ["transfer", "refund_*"]             # only these tools (globs; default: all)
///     format: generic                             # or slack (an incoming-webhook message)
///     timeout: 10s
///     retry_for: 1d
///     coalesce: 30s                               # one agent's burst of requests: one message (0: one each)
/// ```
public struct WebhookConfig: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// `{"type", "timestamp", "data"}`, as Standard Webhooks suggests.
        case generic
        /// A Slack incoming-webhook message (`text` and `blocks`) with approve and deny links.
        case slack
    }

    /// The kinds of event an endpoint can be told about.
    public enum Event: String, Sendable, CaseIterable {
        case requested = "approval.requested"
        case decided = "approval.decided"
        case expired = "approval.expired"
    }

    public var name: String
    public var url: String
    /// Every delivery is signed with each of these (`whsec_` and base64).
    public var secrets: [WebhookSecret]
    public var events: Set<Event>
    /// Only requests for these servers; empty for all.
    public var servers: [String]
    /// Only requests for tools matching these globs; empty for all.
    public var tools: [String]
    public var format: Format
    /// Seconds one attempt may take.
    public var timeout: Int
    /// Seconds to keep retrying a delivery after its event.
    public var retryFor: Int
    /// Seconds before the first retry; each later one waits twice as long (with jitter), up to an hour.
    public var backoff: Int
    /// Seconds over which one agent's approval requests are coalesced: the first is sent at once, those that follow
    /// within this time are sent as one message when it ends (0: every request is sent on its own).
    public var coalesce: Int = 30

    public init(
        name: String, url: String, secrets: [WebhookSecret], events: Set<Event> = Set(Event.allCases), servers: [String] = [], tools: [String] = [],
        format: Format = .generic, timeout: Int = 10, retryFor: Int = 86400, backoff: Int = 5
    ) {
        self.name = name
        self.url = url
        self.secrets = secrets
        self.events = events
        self.servers = servers
        self.tools = tools
        self.format = format
        self.timeout = timeout
        self.retryFor = retryFor
        self.backoff = backoff
    }

    /// Whether a request for `tool` on `server` is for this endpoint.
    public func covers(server: String, tool: String) -> Bool {
        (servers.isEmpty || servers.contains(server))
            && (tools.isEmpty || tools.contains { ToolPattern($0).matches(Array(tool.unicodeScalars)) })
    }
}
