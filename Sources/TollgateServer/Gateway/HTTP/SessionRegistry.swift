import Foundation
import Logging
import TollgateMCP

/// The relay sessions open in this process, by their `Mcp-Session-Id`, with a cap for the gateway and one for each
/// agent, and an idle timeout.
///
/// A session is idle when no request has named it (a POST, a GET that opens its stream, a DELETE) for `idleTimeout`;
/// an open GET stream is not a request. An idle session with a GET stream open has that stream ended, so a client that
/// is still there opens it again (a request: the session goes on); one still idle at the next sweep is closed, and so
/// is an idle session with nothing open, unless a call is in flight in it (perhaps held for an approval). So a session whose client vanished, or left it open and forgot it, ends after the idle timeout and
/// at most two sweeps, whatever it had open.
actor SessionRegistry {
    private struct Entry {
        let session: RelaySession
        var lastRequest: ContinuousClock.Instant = .now
        /// The generation of the GET stream opened last (to end it when the session idles).
        var listener: Int?
    }

    /// Why a session was not added.
    enum Refusal: Error, Equatable {
        /// The gateway has `maxSessions` open.
        case gatewayFull(Int)
        /// The agent has `maxSessionsPerAgent` open.
        case agentFull(Int)
        /// The agent was removed from the configuration, or its key or grant changed, since its request was admitted.
        case agentRevoked
    }

    private var sessions: [String: Entry] = [:]
    private var perAgent: [String: Int] = [:]
    private let maxSessions: Int
    private let maxSessionsPerAgent: Int
    let idleTimeout: Duration
    private let metrics: GatewayMetrics
    private let logger: Logger

    init(
        maxSessions: Int, maxSessionsPerAgent: Int = 100, idleTimeout: Duration = .seconds(1800), metrics: GatewayMetrics, logger: Logger
    ) {
        self.maxSessions = maxSessions
        self.maxSessionsPerAgent = maxSessionsPerAgent
        self.idleTimeout = idleTimeout
        self.metrics = metrics
        self.logger = logger
    }

    /// How often `sweep` should run: a quarter of the idle timeout, between 1 s and 60 s.
    nonisolated var sweepInterval: Duration { min(.seconds(60), max(.seconds(1), idleTimeout / 4)) }

    /// A new session id: 256 random bits as hex, which no client can guess.
    static func newSessionID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    /// Adds a session, unless the gateway or its agent has the most it may have open, or `admitted` says no (checked
    /// here, so that a reload's ``end(agents:)`` either sees the session or the session sees the reload).
    func add(_ session: RelaySession, admitted: @Sendable () -> Bool = { true }) -> Result<Void, Refusal> {
        guard admitted() else { return .failure(.agentRevoked) }
        guard sessions.count < maxSessions else { return .failure(.gatewayFull(maxSessions)) }
        let agent = session.identity.agent
        guard perAgent[agent, default: 0] < maxSessionsPerAgent else {
            logger.warning(
                "session refused: the agent has the most sessions it may have open",
                metadata: ["agent": "\(agent)", "max_sessions_per_agent": "\(maxSessionsPerAgent)"])
            return .failure(.agentFull(maxSessionsPerAgent))
        }
        sessions[session.id] = Entry(session: session)
        perAgent[agent, default: 0] += 1
        metrics.sessionOpened(server: session.identity.server)
        return .success(())
    }

    /// The session a request names: the request counts as activity (it is not idle).
    func session(_ id: String) -> RelaySession? {
        sessions[id]?.lastRequest = .now
        return sessions[id]?.session
    }

    /// The session's GET stream `generation` was opened.
    func listening(_ id: String, generation: Int) {
        sessions[id]?.listener = generation
    }

    /// Removes and closes a session.
    func remove(_ id: String) async {
        guard let entry = sessions.removeValue(forKey: id) else { return }
        let agent = entry.session.identity.agent
        perAgent[agent, default: 1] -= 1
        if perAgent[agent] == 0 { perAgent[agent] = nil }
        metrics.sessionClosed(server: entry.session.identity.server)
        await entry.session.close()
    }

    /// Closes every session of these agents (removed from the configuration, or their key or grant changed): each
    /// request in flight in them is answered (`Session terminated`); returns how many were closed.
    @discardableResult
    func end(agents: Set<String>) async -> Int {
        let ended = sessions.filter { agents.contains($0.value.session.identity.agent) }.map { ($0.key, $0.value.session.identity.agent) }
        for (id, agent) in ended {
            logger.notice("ending a session: its agent was removed or its key changed", metadata: ["session": "\(id)", "agent": "\(agent)"])
            await remove(id)
        }
        return ended.count
    }

    func sessions(server: String) -> [RelaySession] {
        sessions.values.map(\.session).filter { $0.identity.server == server }
    }

    var count: Int { sessions.count }

    /// Sessions open now by `agent`.
    func count(agent: String) -> Int { perAgent[agent, default: 0] }

    /// Ends idle sessions' GET streams, and closes idle sessions with nothing open (see the type's comment).
    func sweep() async {
        for (id, entry) in sessions {
            guard entry.lastRequest.duration(to: .now) > idleTimeout else { continue }
            let session = entry.session
            if await session.hasListener, let generation = entry.listener {
                logger.info("ending an idle session's GET stream", metadata: ["session": "\(id)"])
                sessions[id]?.listener = nil
                await session.closeListener(generation)
                continue
            }
            // With its GET stream ended, a session is busy only with requests in flight.
            guard await !session.isBusy, let now = sessions[id], now.lastRequest.duration(to: .now) > idleTimeout else { continue }
            logger.info("closing an idle session", metadata: ["session": "\(id)"])
            await remove(id)
        }
    }

    func closeAll() async {
        for id in Array(sessions.keys) { await remove(id) }
    }
}
