/// A counter with a cap: at most ``max`` per ``window`` for each ``scope`` (each grant, agent, session, or overall).
///
/// ```yaml
/// limits:
///   - {counter: transfers_per_minute, window: minute, max: 60, scope: grant}
///   - {counter: daily_spend, window: day, max: 10000, scope: agent, increment_from: args.amount}
/// ```
///
/// A call is allowed when the counter's value plus the call's increment stays at or below ``max``.
public struct PolicyLimit: Sendable, Hashable {
    /// The counter's name. Limits that name the same counter share its count.
    public var counter: String
    /// The window length in seconds.
    public var window: Int
    /// The most the counter may reach in a window.
    public var max: Double
    /// Whose calls share the counter.
    public var scope: Scope
    /// How windows are cut.
    public var algorithm: Algorithm
    /// What each call adds when ``incrementFrom`` is not set.
    public var increment: Double
    /// An argument whose numeric value each call adds (spend caps), instead of ``increment``.
    public var incrementFrom: ValuePath?

    public init(
        counter: String,
        window: Int,
        max: Double,
        scope: Scope = .global,
        algorithm: Algorithm = .fixed,
        increment: Double = 1,
        incrementFrom: ValuePath? = nil
    ) {
        self.counter = counter
        self.window = window
        self.max = max
        self.scope = scope
        self.algorithm = algorithm
        self.increment = increment
        self.incrementFrom = incrementFrom
    }

    /// Whose calls share a counter.
    public enum Scope: String, Sendable, Hashable, CaseIterable {
        /// All agents holding the same grant.
        case grant
        /// One agent.
        case agent
        /// One MCP session.
        case session
        /// Every call through the server.
        case global
    }

    /// How a limit's windows are cut.
    public enum Algorithm: String, Sendable, Hashable, CaseIterable {
        /// Windows aligned to multiples of the window length since the Unix epoch, in UTC: a `day` starts at midnight
        /// UTC, a `minute` at second 0. The count resets at each boundary.
        case fixed
        /// The fixed window's count plus the previous window's count weighted by how much of it still overlaps the
        /// last `window` seconds. An approximation of a true sliding window that needs two counts, not a log.
        case sliding
    }
}
