import Synchronization

/// The stateless (2026-07-28) requests whose answers are under way, by agent, so that a configuration reload that
/// removes an agent (or changes its key or grant) can cancel them as it ends the agent's sessions: a call held for
/// approval is then answered (`Request cancelled`) and never runs.
///
/// ```swift
/// let token = calls.add(agent: agent.id) { await relay.abandon(id) }
/// defer { calls.remove(agent: agent.id, token: token) }
/// ```
final class StatelessCalls: Sendable {
    private struct State {
        var next = 0
        var byAgent: [String: [Int: @Sendable () async -> Void]] = [:]
    }

    private let state = Mutex(State())

    /// Keeps `cancel` until ``remove(agent:token:)``; returns the token that removes it.
    func add(agent: String, cancel: @escaping @Sendable () async -> Void) -> Int {
        state.withLock { state in
            state.next += 1
            state.byAgent[agent, default: [:]][state.next] = cancel
            return state.next
        }
    }

    func remove(agent: String, token: Int) {
        state.withLock { state in
            state.byAgent[agent]?[token] = nil
            if state.byAgent[agent]?.isEmpty == true { state.byAgent[agent] = nil }
        }
    }

    /// Cancels every request under way of these agents; returns how many there were.
    @discardableResult
    func cancel(agents: Set<String>) async -> Int {
        let cancels = state.withLock { state in
            agents.flatMap { state.byAgent.removeValue(forKey: $0)?.values.map { $0 } ?? [] }
        }
        for cancel in cancels { await cancel() }
        return cancels.count
    }

    /// Requests under way (for tests and metrics).
    var count: Int { state.withLock { $0.byAgent.values.reduce(0) { $0 + $1.count } } }
}
