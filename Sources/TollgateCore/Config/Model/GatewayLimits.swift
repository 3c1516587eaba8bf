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
