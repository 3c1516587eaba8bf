import Foundation
import Logging
import Synchronization

/// Listens on PostgreSQL channels over a dedicated connection and thread, and turns every notification into a
/// `ChangeSignal` bump.
///
/// The connection is reopened with backoff when it breaks, and the signal is bumped after every reconnect,
/// because notifications sent while it was down are lost: waiters re-read their state instead.
public final class PostgresListener: Sendable {
    public let signal = ChangeSignal()
    private let configuration: PostgresConfiguration
    private let channels: [String]
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var started = false
        var stopped = false
        var connected = false
    }

    public init(configuration: PostgresConfiguration, channels: [String], logger: Logger) {
        self.configuration = configuration
        self.channels = channels
        self.logger = logger
    }

    /// Starts the listening thread; calling it again does nothing.
    public func start() {
        let first = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        guard first else { return }
        let thread = Thread { [self] in self.run() }
        thread.name = "tollgate-listen"
        thread.start()
    }

    /// Stops the thread within a quarter of a second and closes its connection.
    public func stop() {
        state.withLock { $0.stopped = true }
    }

    /// Whether the listening connection is up: for readiness checks.
    public var isConnected: Bool { state.withLock { $0.connected } }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func run() {
        var backoff = 0.05
        while !isStopped {
            do {
                let connection = try PostgresConnection.connect(configuration)
                defer { connection.close() }
                for channel in channels { try connection.listen(channel) }
                state.withLock { $0.connected = true }
                backoff = 0.05
                signal.bump()
                while !isStopped {
                    let notifications = try connection.waitForNotifications(timeout: .milliseconds(250))
                    if !notifications.isEmpty { signal.bump() }
                }
            } catch {
                state.withLock { $0.connected = false }
                if isStopped { break }
                logger.warning("listening connection failed; retrying", metadata: ["error": "\(error)", "retry_in_s": "\(backoff)"])
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(backoff * 2, 5)
            }
        }
        state.withLock { $0.connected = false }
    }
}
