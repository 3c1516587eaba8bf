/// A relay's upstream connection over its life, as a pure state machine (the time is an input): started on the first
/// request that needs it, restarted on the next one after it dies (with backoff: 0.2 s, 0.4 s, ... up to 10 s between
/// starts; a connection that lived a minute resets it), and in a session given the agent's `initialize` again on a
/// restart, before any request goes to it. `Connection` is the connection (tests use any value).
///
/// ```swift
/// switch lifecycle.need(now: .now) {
/// case .use(let connection): ...            // send on it
/// case .wait: ...                           // a start is under way: wait for it
/// case .start(let delay, let replay): ...   // sleep `delay`, connect, `connected`, replay `initialize`, `ready`
/// case .closed: ...
/// }
/// ```
struct UpstreamLifecycle<Connection> {
    enum State {
        case idle
        /// Connecting (or replaying `initialize` on connection `generation`, once there is one).
        case starting(generation: Int?)
        case running(Connection, generation: Int)
        case closed
    }

    private(set) var state = State.idle
    /// The agent's `initialize` parameters (session mode), replayed to a restarted upstream.
    var initializeParams: String?
    private var starts = 0
    private var lastStart: ContinuousClock.Instant?
    private var generation = 0

    /// What a request that needs the upstream does.
    enum Need {
        case use(Connection)
        case wait
        /// Start one: wait `delay` first, and give it `replay` (the agent's `initialize` parameters) before anything else.
        case start(delay: Duration, replay: String?)
        case closed
    }

    /// The running connection, if any.
    var connection: Connection? {
        if case .running(let connection, _) = state { connection } else { nil }
    }

    mutating func need(now: ContinuousClock.Instant) -> Need {
        switch state {
        case .running(let connection, _): return .use(connection)
        case .starting: return .wait
        case .closed: return .closed
        case .idle: break
        }
        var delay = Duration.zero
        if starts > 0, let lastStart {
            let wait = lastStart + .milliseconds(min(10_000, 200 << min(starts - 1, 6))) - now
            if wait > .zero { delay = wait }
        }
        lastStart = now + delay
        starts += 1
        state = .starting(generation: nil)
        return .start(delay: delay, replay: starts > 1 ? initializeParams : nil)
    }

    /// The start connected: the connection's generation, by which its end is known (its messages are read from now).
    mutating func connected() -> Int {
        generation += 1
        if case .starting = state { state = .starting(generation: generation) }
        return generation
    }

    /// The connection is ready for requests (its `initialize` replayed, if it needed one). False when the relay closed
    /// or the connection died meanwhile: then it must not be used.
    mutating func ready(_ connection: Connection, generation: Int) -> Bool {
        guard case .starting(generation) = state else { return false }
        state = .running(connection, generation: generation)
        return true
    }

    /// The start failed (no connection, or the restarted upstream did not accept `initialize`): the next request tries
    /// again.
    mutating func startFailed() {
        if case .starting = state { state = .idle }
    }

    /// Connection `generation` ended at `now`. False when it was not the current one (nothing else changes then).
    mutating func ended(generation ended: Int, now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .running(_, ended), .starting(ended): break
        default: return false
        }
        state = .idle
        if let lastStart, lastStart.duration(to: now) > .seconds(60) { starts = 1 }
        return true
    }

    /// The relay ends: the connection to close, if one runs.
    mutating func close() -> Connection? {
        defer { state = .closed }
        return connection
    }
}
