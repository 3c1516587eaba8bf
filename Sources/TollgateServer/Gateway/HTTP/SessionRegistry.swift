import Foundation
import Logging
import TollgateMCP

/// The relay sessions open in this process, by their `Mcp-Session-Id`, with a cap and an idle timeout.
actor SessionRegistry {
    private var sessions: [String: RelaySession] = [:]
    private let maxSessions: Int
    private let idleTimeout: Duration
    private let metrics: GatewayMetrics
    private let logger: Logger

    init(maxSessions: Int, idleTimeout: Duration = .seconds(1800), metrics: GatewayMetrics, logger: Logger) {
        self.maxSessions = maxSessions
        self.idleTimeout = idleTimeout
        self.metrics = metrics
        self.logger = logger
    }

    /// A new session id: 256 random bits as hex, which no client can guess.
    static func newSessionID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    /// Adds a session; `false` when the cap is reached.
    func add(_ session: RelaySession) -> Bool {
        guard sessions.count < maxSessions else { return false }
        sessions[session.id] = session
        metrics.sessionOpened(server: session.identity.server)
        return true
    }

    func session(_ id: String) -> RelaySession? {
        sessions[id]
    }

    /// Removes and closes a session.
    func remove(_ id: String) async {
        guard let session = sessions.removeValue(forKey: id) else { return }
        metrics.sessionClosed(server: session.identity.server)
        await session.close()
    }

    func sessions(server: String) -> [RelaySession] {
        sessions.values.filter { $0.identity.server == server }
    }

    var count: Int { sessions.count }

    /// Closes sessions with nothing in flight and no activity for the idle timeout.
    func sweep() async {
        for (id, session) in sessions {
            let idle = await session.lastActivity.duration(to: .now)
            if idle > idleTimeout, await !session.isBusy {
                logger.info("closing an idle session", metadata: ["session": "\(id)"])
                await remove(id)
            }
        }
    }

    func closeAll() async {
        for id in Array(sessions.keys) { await remove(id) }
    }
}
