import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A pool of libpq connections with a maximum size and a wait timeout. Every blocking libpq call runs on the
/// pool's own threads, never on the caller's executor or a SwiftNIO event loop.
///
/// ```swift
/// let client = PostgresClient(configuration: PostgresConfiguration("postgresql:///tollgate"))
/// let count = try await client.withConnection { connection in
///     try connection.query("SELECT count(*) FROM tollgate.events")[0].decode(Int64.self, 0)
/// }
/// try await client.withTransaction { connection in ... }
/// await client.shutdown()
/// ```
///
/// Broken connections are found when they are leased (the server's termination notice or end of stream is read
/// without blocking) and replaced by new ones, so a server restart costs at most the statements that were in
/// flight, which fail with `PostgresError.connectionLost`.
public final class PostgresClient: Sendable {
    public struct Options: Sendable {
        /// Connections open at most at once.
        public var maxConnections: Int
        /// How long a caller waits for a free connection before `PostgresError.poolTimeout`.
        public var waitTimeout: Duration

        public init(maxConnections: Int = 16, waitTimeout: Duration = .seconds(10)) {
            self.maxConnections = max(1, maxConnections)
            self.waitTimeout = waitTimeout
        }
    }

    public let configuration: PostgresConfiguration
    public let options: Options
    let logger: Logger
    private let threads: NIOThreadPool
    private let state = Mutex(PoolState())

    public init(configuration: PostgresConfiguration, options: Options = Options(), logger: Logger = Logger(label: "tollgate.postgres")) {
        self.configuration = configuration
        self.options = options
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: options.maxConnections)
        self.threads.start()
    }

    /// Runs `body` with a leased connection on a pool thread. The body may run several statements; it must not
    /// leave a transaction open (an open one is rolled back).
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let grant = try await grantNowOrWait()
        let configuration = configuration
        let logger = logger
        // One trip to a pool thread: the leased connection is checked (and replaced when broken), or the free slot's
        // connection opened, right before the body runs.
        let outcome: (connection: PostgresConnection?, result: Result<T, any Error>)
        do {
            outcome = try await onPoolThread { () -> (PostgresConnection?, Result<T, any Error>) in
                let connection: PostgresConnection
                do {
                    switch grant {
                    case .connection(let leased) where leased.isUsable:
                        connection = leased
                    case .connection(let leased):
                        logger.info("replacing a broken database connection", metadata: ["backend": "\(leased.backendPID)"])
                        leased.close()
                        connection = try PostgresConnection.connect(configuration)
                    case .openSlot:
                        connection = try PostgresConnection.connect(configuration)
                    }
                } catch {
                    return (nil, .failure(error))
                }
                defer { if connection.isInTransaction { try? connection.execute("ROLLBACK") } }
                return (connection, Result { try body(connection) })
            }
        } catch {
            // The pool's threads have stopped: the grant goes back unused.
            switch grant {
            case .connection(let connection): release(connection)
            case .openSlot: releaseSlot()
            }
            throw error
        }
        guard let connection = outcome.connection else {
            releaseSlot()
            return try outcome.result.get()
        }
        release(connection)
        return try outcome.result.get()
    }

    /// Runs `body` in a transaction on a pool thread: committed if it returns, rolled back if it throws.
    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withConnection { connection in try connection.transaction(body) }
    }

    /// Runs one statement on a leased connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> PostgresResult {
        try await withConnection { connection in try connection.query(sql, parameters) }
    }

    /// Runs `body` on a pool thread. A caller on an event loop is resumed on that same loop (its connections and
    /// timers are there), not on whichever loop the thread would pick, which made a call's next step a hop between
    /// loops half the time.
    private func onPoolThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard let loop = LoopTimer.callerLoop else { return try await threads.runIfActive(body) }
        return try await threads.runIfActive(eventLoop: loop, body).get()
    }

    /// Runs a blocking call that needs its own connection (a `LISTEN` loop) on a dedicated thread, outside the pool.
    func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threads.runIfActive(body)
    }

    /// Closes every idle connection and fails waiting callers. Leased connections close when they come back.
    public func shutdown() async {
        let (idle, waiters) = state.withLock { state -> ([PostgresConnection], [Waiter]) in
            state.isClosed = true
            let idle = state.idle
            let waiters = state.waiters
            state.open -= idle.count
            state.idle = []
            state.waiters = []
            return (idle, waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: PostgresError.poolClosed) }
        try? await threads.runIfActive { idle.forEach { $0.close() } }
        try? await threads.shutdownGracefully()
    }

    /// Connections open now (idle and leased), and idle ones: for metrics and tests.
    public var connectionCounts: (open: Int, idle: Int) {
        state.withLock { ($0.open, $0.idle.count) }
    }

    // MARK: - Leasing

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Grant, any Error>
    }

    private struct PoolState {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var isClosed = false
    }

    /// What a caller may do once it has its turn: use an idle connection, or open a new one in a free slot.
    private enum Grant: Sendable {
        case connection(PostgresConnection)
        case openSlot
    }

    /// An idle connection or a free slot at once when there is one; otherwise waits in line until one is
    /// released, or the wait timeout passes.
    private func grantNowOrWait() async throws -> Grant {
        enum Now { case grant(Grant), fail(PostgresError), wait(UInt64) }
        let now = state.withLock { state -> Now in
            if state.isClosed { return .fail(.poolClosed) }
            if let connection = state.idle.popLast() { return .grant(.connection(connection)) }
            if state.open < options.maxConnections {
                state.open += 1
                return .grant(.openSlot)
            }
            state.nextWaiterID += 1
            return .wait(state.nextWaiterID)
        }
        let waiterID: UInt64
        switch now {
        case .grant(let grant): return grant
        case .fail(let error): throw error
        case .wait(let id): waiterID = id
        }
        let timeout = LoopTimer.schedule(in: options.waitTimeout) { self.timeOut(waiterID) }
        defer { timeout.cancel() }
        // A caller whose task is cancelled while it waits (a decision past its deadline) leaves the line at once, so work
        // nobody waits for any more is not done once connections come back.
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                // Something may have been released between the check above and now: look again before queueing.
                enum Immediate { case grant(Grant), cancelled, queued }
                let immediate = state.withLock { state -> Immediate in
                    if let connection = state.idle.popLast() { return .grant(.connection(connection)) }
                    if state.open < options.maxConnections {
                        state.open += 1
                        return .grant(.openSlot)
                    }
                    // Under the lock the cancellation handler takes: a cancellation is seen here, or finds the waiter in line.
                    if Task.isCancelled { return .cancelled }
                    state.waiters.append(Waiter(id: waiterID, continuation: continuation))
                    return .queued
                }
                switch immediate {
                case .grant(let grant): continuation.resume(returning: grant)
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .queued: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func release(_ connection: PostgresConnection) {
        guard connection.isConnected, !connection.isInTransaction else {
            connection.close()
            releaseSlot()
            return
        }
        enum Next { case handTo(Waiter), keepIdle, close }
        let next = state.withLock { state -> Next in
            if state.isClosed {
                state.open -= 1
                return .close
            }
            if !state.waiters.isEmpty { return .handTo(state.waiters.removeFirst()) }
            state.idle.append(connection)
            return .keepIdle
        }
        switch next {
        case .handTo(let waiter): waiter.continuation.resume(returning: .connection(connection))
        case .keepIdle: break
        case .close: connection.close()
        }
    }

    /// A connection went away: its slot goes to the first waiter, if any.
    private func releaseSlot() {
        let waiter = state.withLock { state -> Waiter? in
            if !state.isClosed, !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .openSlot)
    }

    private func timeOut(_ waiterID: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: PostgresError.poolTimeout(waited: options.waitTimeout, maxConnections: options.maxConnections))
    }
}
