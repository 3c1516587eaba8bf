/// One count a decision reads: a counter, for one scope (`grant:<g>`, `agent:<a>`, `session:<s>`, `global`), in one
/// window of one upstream server.
///
/// ``CompiledPolicy/counterKeys(for:)`` lists the keys a call needs; the caller reads their current values (a missing
/// count is 0) and passes them to ``CompiledPolicy/evaluate(_:counts:)``.
public struct CounterKey: Sendable, Hashable, CustomStringConvertible {
    public var server: String
    public var counter: String
    /// `grant:<grant>`, `agent:<agent>`, `session:<session>` or `global`.
    public var scope: String
    /// The window's start, in seconds since the Unix epoch (UTC).
    public var windowStart: Int64
    /// The window's length in seconds.
    public var windowSeconds: Int

    public init(server: String, counter: String, scope: String, windowStart: Int64, windowSeconds: Int) {
        self.server = server
        self.counter = counter
        self.scope = scope
        self.windowStart = windowStart
        self.windowSeconds = windowSeconds
    }

    public var description: String { "\(server)/\(counter)/\(scope)@\(windowStart)+\(windowSeconds)s" }
}
