import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgatePostgres

/// Calls' outcomes that the log could not take when the calls ended (the database down or restarting, or its answer
/// lost), kept in memory and written once it answers again.
///
/// ```swift
/// let outcomes = OutcomeBacklog(write: { try await recorder.record($0) }, metrics: metrics, logger: logger)
/// await outcomes.record(completed)          // written now, or kept and written later
/// await outcomes.flush(within: .seconds(5)) // on shutdown
/// ```
///
/// - A kept outcome is retried with backoff (0.1 s doubling to 5 s), oldest first, in batches that share commits.
/// - Writing is idempotent: an outcome is appended at version 2 of its call's stream, so a retry of one whose first
///   commit succeeded but whose answer was lost is a version conflict, taken as "already recorded", never a second
///   `ToolCallCompleted`. The reservations a `not_sent` outcome gives back are given back in the transaction that
///   writes it, so once as well; until then the windows count the call (they err on the side of refusing).
/// - At most `capacity` outcomes are kept (``defaultCapacity``): past it the newest is dropped, with a log line naming
///   the call, and counted in `tollgate_outcomes_dropped_total{reason="backlog_full"}`. Outcomes waiting are in
///   `tollgate_outcomes_waiting`. A log line says when the backlog starts and when it has drained.
/// - Behind a backlog, a new outcome waits its turn (the database is likely still away) instead of being tried alone.
final class OutcomeBacklog: Sendable {
    /// Outcomes kept at most. Only calls in flight when the database went away can end up here (no call is forwarded
    /// while it is away: decisions cannot be recorded), so the cap is rarely near; an outcome is a few hundred bytes.
    static let defaultCapacity = 10_000
    /// How long a clean shutdown tries to write what is kept.
    static let shutdownFlushTime = Duration.seconds(5)
    /// Outcomes written at once while draining: they share the event store's group commits.
    static let batchSize = 32

    typealias Write = @Sendable (ToolCallCompleted) async throws -> Void

    let capacity: Int
    let firstDelay: Duration
    let maxDelay: Duration
    private let write: Write
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let state = Mutex(State())

    /// A kept outcome, numbered in the order it was kept.
    private struct Waiting: Sendable {
        var number: UInt64
        var outcome: ToolCallCompleted
    }

    private struct State {
        var waiting: [Waiting] = []
        var nextNumber: UInt64 = 0
        /// A drain task is running.
        var draining = false
        /// First attempts under way (`record`).
        var attempts = 0
        /// Shutting down: retry at once, without backoff.
        var hurry = false
        /// Past the shutdown flush: nothing is kept any more.
        var stopped = false
        /// When the current backlog started, and what became of its outcomes so far.
        var since: ContinuousClock.Instant?
        var kept = 0
        var dropped = 0
    }

    init(
        capacity: Int = OutcomeBacklog.defaultCapacity, firstDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(5),
        metrics: GatewayMetrics, logger: Logger, write: @escaping Write
    ) {
        self.capacity = max(1, capacity)
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
        self.metrics = metrics
        self.logger = logger
        self.write = write
        metrics.outcomesWaiting(0)
    }

    /// Outcomes waiting to be written now.
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Writes `outcome` to the log, or keeps it to write once the database answers.
    func record(_ outcome: ToolCallCompleted) async {
        let tryNow = state.withLock { state -> Bool in
            guard state.waiting.isEmpty || state.stopped else { return false }
            state.attempts += 1
            return true
        }
        guard tryNow else {
            keep(outcome, error: nil)
            return
        }
        defer { state.withLock { $0.attempts -= 1 } }
        do {
            try await write(outcome)
        } catch {
            switch Self.failure(error) {
            case .alreadyRecorded:
                logger.error("a call's outcome was already in the log; the second one is not written", metadata: metadata(outcome, error: error))
            case .refused:
                refused(outcome, error: error)
            case .retry:
                keep(outcome, error: error)
            }
        }
    }

    /// Tries to write what is kept for at most `limit` (retrying at once, without backoff), then logs each outcome it
    /// could not write and keeps nothing more: a later failure to record is logged and dropped.
    func flush(within limit: Duration = OutcomeBacklog.shutdownFlushTime) async {
        let deadline = ContinuousClock.now + limit
        let (count, start) = state.withLock { state -> (Int, Bool) in
            state.hurry = true
            guard !state.waiting.isEmpty, !state.draining else { return (state.waiting.count, false) }
            state.draining = true
            return (state.waiting.count, true)
        }
        if count > 0 {
            logger.notice(
                "stopping: writing the calls' outcomes kept for the database",
                metadata: ["outcomes": "\(count)", "within": "\(limit)"])
        }
        if start { Task { await drain() } }
        while ContinuousClock.now < deadline, state.withLock({ !$0.waiting.isEmpty || $0.attempts > 0 }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = state.withLock { state -> [ToolCallCompleted] in
            state.stopped = true
            defer { state.waiting = [] }
            return state.waiting.map(\.outcome)
        }
        metrics.outcomesWaiting(0)
        for outcome in left {
            metrics.outcomeDropped("shutdown")
            logger.error(
                "stopping: could not write a call's outcome; `audit replay` will show the call as no_outcome",
                metadata: metadata(outcome, error: nil))
        }
        if !left.isEmpty { logger.error("stopping: outcomes not written", metadata: ["outcomes": "\(left.count)"]) }
    }

    // MARK: - Keeping and draining

    private enum Kept { case kept(began: Bool, drain: Bool, count: Int), full, stopped }

    private func keep(_ outcome: ToolCallCompleted, error: (any Error)?) {
        let kept = state.withLock { state -> Kept in
            if state.stopped { return .stopped }
            guard state.waiting.count < capacity else {
                state.dropped += 1
                return .full
            }
            state.waiting.append(Waiting(number: state.nextNumber, outcome: outcome))
            state.nextNumber += 1
            let began = state.since == nil
            if began {
                state.since = .now
                state.kept = 0
                state.dropped = 0
            }
            state.kept += 1
            let drain = !state.draining
            state.draining = true
            return .kept(began: began, drain: drain, count: state.waiting.count)
        }
        switch kept {
        case .kept(let began, let drain, let count):
            metrics.outcomesWaiting(count)
            if began {
                var details = metadata(outcome, error: error)
                details["capacity"] = "\(capacity)"
                logger.warning("the log cannot take calls' outcomes now; keeping them in memory until the database answers", metadata: details)
            }
            if drain { Task { await self.drain() } }
        case .full:
            metrics.outcomeDropped("backlog_full")
            var details = metadata(outcome, error: error)
            details["capacity"] = "\(capacity)"
            logger.error("a call's outcome is dropped: the outcomes waiting for the database are at their cap", metadata: details)
        case .stopped:
            metrics.outcomeDropped("shutdown")
            logger.error("cannot record a call's outcome while stopping; it is dropped", metadata: metadata(outcome, error: error))
        }
    }

    private enum Drained { case more(ContinuousClock.Instant), drained(kept: Int, dropped: Int, seconds: Double), stopped }

    /// Writes the kept outcomes, oldest first, until none is left (or the gateway has stopped).
    private func drain() async {
        var delay = firstDelay
        while true {
            let batch = state.withLock { state -> [Waiting] in
                if state.stopped || state.waiting.isEmpty {
                    state.draining = false
                    return []
                }
                return Array(state.waiting.prefix(Self.batchSize))
            }
            guard !batch.isEmpty else { return }
            // Each one's failure, `nil` when written.
            let results = await withTaskGroup(of: (UInt64, Failure?, (any Error)?).self) { group in
                for kept in batch {
                    group.addTask {
                        do {
                            try await self.write(kept.outcome)
                            return (kept.number, nil, nil)
                        } catch {
                            return (kept.number, Self.failure(error), error)
                        }
                    }
                }
                var results: [UInt64: (failure: Failure?, error: (any Error)?)] = [:]
                for await (number, failure, error) in group { results[number] = (failure, error) }
                return results
            }
            for kept in batch {
                guard let result = results[kept.number], let failure = result.failure else { continue }
                switch failure {
                case .alreadyRecorded:
                    logger.info("a kept outcome was already in the log (an earlier try committed)", metadata: metadata(kept.outcome, error: nil))
                case .refused:
                    refused(kept.outcome, error: result.error)
                case .retry:
                    break
                }
            }
            let retry = results.values.contains { $0.failure == .retry }
            let next = state.withLock { state -> Drained in
                if state.stopped {
                    state.draining = false
                    return .stopped
                }
                // Written (now, or by an earlier try whose answer was lost) or refused: done with. The rest stay first.
                state.waiting.removeAll { kept in results[kept.number].map { $0.failure != .retry } ?? false }
                guard state.waiting.isEmpty else { return .more(.now) }
                state.draining = false
                let seconds = state.since.map { Double($0.duration(to: .now).microseconds) / 1_000_000 } ?? 0
                defer { state.since = nil }
                return .drained(kept: state.kept, dropped: state.dropped, seconds: seconds)
            }
            switch next {
            case .stopped:
                return
            case .drained(let kept, let dropped, let seconds):
                metrics.outcomesWaiting(0)
                logger.notice(
                    "the calls' outcomes kept for the database are written; none is waiting",
                    metadata: ["outcomes": "\(kept)", "dropped": "\(dropped)", "seconds": "\(String(format: "%.3f", seconds))"])
                return
            case .more:
                metrics.outcomesWaiting(waitingCount)
            }
            if retry {
                await pause(delay)
                delay = min(delay * 2, maxDelay)
            } else {
                delay = firstDelay
            }
        }
    }

    /// Sleeps `delay`, or less once a shutdown wants the backlog written.
    private func pause(_ delay: Duration) async {
        let until = ContinuousClock.now + delay
        while ContinuousClock.now < until {
            if state.withLock({ $0.hurry || $0.stopped }) {
                try? await Task.sleep(for: .milliseconds(50))
                return
            }
            try? await Task.sleep(for: min(.milliseconds(50), ContinuousClock.now.duration(to: until)))
        }
    }

    // MARK: - Failures

    enum Failure: Equatable, Sendable {
        /// The stream already has its outcome: an earlier try committed, its answer was lost.
        case alreadyRecorded
        /// The log refuses it for good (a malformed event, a stream not at its decision): retrying cannot help.
        case refused
        /// The database could not be reached or failed for now: try again.
        case retry
    }

    /// What a failure to write an outcome means for it.
    static func failure(_ error: any Error) -> Failure {
        switch error {
        case EventStoreError.wrongExpectedVersion(_, _, let actual) where actual >= 2:
            return .alreadyRecorded
        case is EventStoreError:
            return .refused
        case let error as PostgresError:
            switch error {
            case .server(let server):
                // Connection, transaction-state (a read-only standby), rollback, resources, object state (locks),
                // operator intervention (shutdown, statement timeout) and system errors pass; anything else is in the statement.
                let passing = ["08", "25", "40", "53", "55", "57", "58"]
                return passing.contains(where: server.sqlState.hasPrefix) ? .retry : .refused
            case .decoding:
                return .refused
            default:
                return .retry
            }
        default:
            return .retry
        }
    }

    private func refused(_ outcome: ToolCallCompleted, error: (any Error)?) {
        metrics.outcomeDropped("refused")
        logger.error("cannot record a call's outcome: the log refuses it", metadata: metadata(outcome, error: error))
    }

    private func metadata(_ outcome: ToolCallCompleted, error: (any Error)?) -> Logger.Metadata {
        var details: Logger.Metadata = [
            "call": "\(outcome.callID.lowercasedString)", "server": "\(outcome.server)", "tool": "\(outcome.tool)", "outcome": "\(outcome.outcome)",
        ]
        if let error { details["error"] = "\(error)" }
        return details
    }
}
