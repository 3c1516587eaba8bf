/// Bounds on what callers can make the gateway hold in memory or wait for.
public struct GatewayLimits: Sendable, Equatable {
    /// The largest request body accepted, in bytes (1 KiB to 64 MiB).
    public var maxBodyBytes: Int
    /// The most calls held at once while they wait for an approval.
    public var maxHeldCalls: Int
    /// The most MCP sessions open at once.
    public var maxSessions: Int
    /// How long to wait for an upstream server's answer to one request.
    public var upstreamTimeout: Duration
    /// The most bytes the relay holds at once for agents that have not read them yet (replies, listening streams), across
    /// the process; past it, what may be dropped is (and counted), and an answer is replaced by an error.
    public var maxBufferedBytes: Int = 256 << 20
    /// The most `subscriptions/listen` streams one agent may have open at once; the next is refused.
    public var maxListenStreamsPerAgent: Int = 16
    /// How long deciding a `tools/call` may take, recording the decision included; past it the call is refused ("the
    /// decision log did not answer") and nothing is forwarded.
    public var decisionDeadline: Duration = .seconds(2)
    /// The most MCP sessions one agent may have open at once (within `maxSessions`).
    public var maxSessionsPerAgent: Int = 100
    /// How long a session may go without a request before it is closed; an open GET stream is not a request.
    public var sessionIdleTimeout: Duration = .seconds(1800)
    /// The most HTTP connections open at once (at most half the process's open-file limit).
    public var maxConnections: Int = 10_000
    /// How long a request's head may take to arrive, from the connection's start or the head's first byte.
    public var headerTimeout: Duration = .seconds(10)
    /// How long a request's body may take to arrive, from the end of its head.
    public var bodyTimeout: Duration = .seconds(60)
    /// How long a connection may stay open with no request on it (longer than the 60 s a proxy such as nginx keeps an
    /// idle upstream connection, so that the proxy closes it first).
    public var connectionIdleTimeout: Duration = .seconds(75)

    /// A refused call whose arguments, as stored, have more bytes of canonical JSON keeps only their hash, size and
    /// top-level keys in the log.
    public var maxRefusedArgumentBytes: Int = 4096
    /// Refusals of one agent recorded one by one per minute; past it they are answered as always and counted in one
    /// `RefusalsSummarized` event per agent and minute.
    public var maxRecordedRefusalsPerMinute: Int = 60
    /// The most approval requests one agent may have pending at once; its next call that needs approval is refused.
    public var maxPendingApprovals: Int = 20

    /// What `max_body_bytes` may be: 1 KiB to 64 MiB.
    static let bodyBytesRange = 1024...(64 << 20)
    /// What `max_held_calls` and `max_sessions` may be.
    static let countRange = 1...1_000_000

    public init(
        maxBodyBytes: Int = 4 << 20,
        maxHeldCalls: Int = 1000,
        maxSessions: Int = 1000,
        upstreamTimeout: Duration = .seconds(120)
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.maxHeldCalls = maxHeldCalls
        self.maxSessions = maxSessions
        self.upstreamTimeout = upstreamTimeout
    }
}
