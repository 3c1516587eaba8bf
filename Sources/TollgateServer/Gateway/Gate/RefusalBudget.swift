import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgatePostgres

/// Each agent's budget of refusals recorded one by one (`limits.max_recorded_refusals_per_minute`), so an agent that
/// sends refused calls as fast as it can grows the log by a bounded amount.
///
/// ```swift
/// if budget.admit(decided) { try await recorder.record(decided) }   // else: counted for the minute's summary
/// await budget.flush()                                               // on shutdown
/// ```
///
/// - An agent's first `budget` refusals in a minute (from its first refusal) are recorded in full (with bounded
///   arguments). The rest are answered as always and counted by server, tool, decision and reason; when the minute
///   ends one `RefusalsSummarized` event per agent holds the counts (`tollgate_refusals_summarized_total`).
/// - Per process: two gateways on one database keep a budget each.
/// - A summary the log cannot take is retried 5 times over about 30 s, then logged and dropped
///   (`tollgate_refusal_summaries_dropped_total`); the calls it counted were refused, never forwarded.
final class RefusalBudget: Sendable {
    typealias Write = @Sendable (RefusalsSummarized) async throws -> Void

    private let state: Mutex<State>
    private let write: Write
    private let metrics: GatewayMetrics
    private let logger: Logger

    private struct State {
        var ledger: RefusalLedger
        /// A task writes the summaries as they fall due.
        var flushing = false
    }

    init(perMinute: Int, window: TimeInterval = 60, metrics: GatewayMetrics, logger: Logger, write: @escaping Write) {
        self.state = Mutex(State(ledger: RefusalLedger(budget: perMinute, window: window)))
        self.metrics = metrics
        self.logger = logger
        self.write = write
    }

    /// Whether to record the refused call `decided` in full (`false`: it is counted in its agent's summary).
    func admit(_ decided: ToolCallDecided) -> Bool {
        let (admission, startFlusher) = state.withLock { state -> (RefusalLedger.Admission, Bool) in
            let admission = state.ledger.refused(
                agent: decided.agent, server: decided.server, tool: decided.tool, decision: decided.decision, reason: decided.reason, now: Date())
            guard case .count = admission, !state.flushing else { return (admission, false) }
            state.flushing = true
            return (admission, true)
        }
        guard case .count(let first) = admission else { return true }
        metrics.refusalSummarized(server: decided.server)
        if first {
            logger.warning(
                "an agent is past its budget of refusals recorded one by one this minute; the rest are counted in one summary event",
                metadata: ["agent": "\(decided.agent)", "budget": "\(state.withLock { $0.ledger.budget })"])
        }
        if startFlusher { Task { await self.writeWhenDue() } }
        return false
    }

    /// Refusals counted and not yet written in a summary.
    var pending: Int { state.withLock { $0.ledger.pending } }

    /// Writes every summary now, due or not (on shutdown).
    func flush() async {
        let summaries = state.withLock { $0.ledger.due(now: Date(), everything: true) }
        for summary in summaries { await store(summary) }
    }

    /// Sleeps until the next summary is due and writes it, until none is pending.
    private func writeWhenDue() async {
        while true {
            let next = state.withLock { state -> Date? in
                guard let due = state.ledger.dueAt else {
                    state.flushing = false
                    return nil
                }
                return due
            }
            guard let next else { return }
            let wait = next.timeIntervalSinceNow
            if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000) + 1)) }
            let summaries = state.withLock { $0.ledger.due(now: Date()) }
            for summary in summaries { await store(summary) }
        }
    }

    private func store(_ summary: RefusalsSummarized) async {
        var delay = Duration.seconds(1)
        for attempt in 1...5 {
            do {
                try await write(summary)
                logger.notice(
                    "refusals past an agent's budget recorded as one summary",
                    metadata: ["agent": "\(summary.agent)", "summarized": "\(summary.summarized)", "recorded": "\(summary.recorded)"])
                return
            } catch {
                if attempt == 5 {
                    logger.error(
                        "cannot record a summary of refusals; dropped (the calls were refused, none was forwarded)",
                        metadata: ["agent": "\(summary.agent)", "summarized": "\(summary.summarized)", "error": "\(error)"])
                    metrics.refusalSummaryDropped()
                    return
                }
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
    }
}
