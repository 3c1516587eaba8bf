import Foundation
import Logging
import NIOCore
import Synchronization
import TollgateCore
import TollgateMCP
import TollgatePostgres

extension PolicyGate {
    /// The default of `limits.decision_deadline`.
    static let defaultDecisionDeadline = Duration.seconds(2)

    /// Decides `request` within the decision deadline (`limits.decision_deadline`, 2 s by default): past it the call is
    /// refused ("the decision log did not answer in 2 s") and nothing is forwarded, whatever the database does later.
    ///
    /// The decision runs in a task of its own, so a database that hangs instead of failing (SIGSTOP, a lock held by
    /// another session, a network that drops packets) costs the agent the deadline, not the hang. At the deadline that
    /// task is cancelled: a decision still queued for a connection or a group commit is dropped unwritten. One already
    /// sent to the database may still commit after the agent was refused (a late commit); when it would have forwarded
    /// the call, its outcome is recorded as `not_sent` (through the outcome backlog, so also once the database answers
    /// again), which gives its rate-window reservations back: the log never reads as forwarded, and a late reservation
    /// counts only until then.
    ///
    /// A call held for approval is under the deadline until its hold begins (the approval request is recorded), not while
    /// it waits for reviewers.
    func decide(_ request: ToolCallRequest) async -> ToolCallVerdict {
        let callID = UUID.random()
        guard let limit = decisionDeadline else { return await decide(request, callID: callID) }
        let race = DecisionRace()
        let work = Task {
            let verdict = await DecisionRace.$current.withValue(race) { await self.decide(request, callID: callID) }
            if !race.finish(verdict) { await self.decidedLate(verdict, request: request, callID: callID, limit: limit) }
        }
        let timer = LoopTimer.schedule(in: limit) {
            let refusal = GateRefusal(
                outcome: "error", rule: "database_deadline", policyHash: policies.policy(for: request.identity.server)?.contentHash ?? "",
                text: "Tollgate refused this call to `\(request.tool)`: the decision log did not answer in \(Self.seconds(limit)), and no "
                    + "call is forwarded unrecorded. Try again later.")
            if race.expire(verdict(refusal, callID: callID)) {
                work.cancel()
                metrics.decided("deadline", server: request.identity.server)
                // At most one line a second while the database does not answer (at 100 calls/s, 100 lines a second otherwise).
                if let others = DecisionRace.logLimiter.admit() {
                    logger.warning(
                        "the decision log did not answer in time; the call is refused",
                        metadata: [
                            "tool": "\(request.tool)", "call": "\(callID.lowercasedString)", "deadline": "\(Self.seconds(limit))",
                            "others_refused_since_last_line": "\(others)",
                        ])
                }
            }
        }
        let answer = await withTaskCancellationHandler {
            await race.answer()
        } onCancel: {
            work.cancel()
        }
        timer.cancel()
        return answer
    }

    /// A decision that ended after its deadline, when the agent was already refused.
    private func decidedLate(_ verdict: ToolCallVerdict, request: ToolCallRequest, callID: UUID, limit: Duration) async {
        guard case .forward(let ticket) = verdict else { return }
        logger.notice(
            "a decision was recorded after its deadline, when the call had been refused; its outcome is recorded as not sent",
            metadata: ["tool": "\(request.tool)", "call": "\(callID.lowercasedString)"])
        await complete(ticket, outcome: .notSent("the decision log did not answer in \(Self.seconds(limit)); the call was refused"))
    }

    /// Records a call's outcome, waiting at most the decision deadline: some answers wait for their outcome to be in the
    /// log (those that give reservations back, and those the gateway makes up instead of the upstream's), and a database
    /// that hangs must not hold them. Past it the write goes on beside the agent's answer (kept in the outcome backlog if
    /// it fails), and the reservations it gives back stay counted until it lands.
    func recordWithinDeadline(_ event: ToolCallCompleted) async {
        guard let limit = decisionDeadline else {
            await outcomes.record(event)
            return
        }
        let outcomes = outcomes
        let waiting = OneResume()
        var timer: Scheduled<Void>?
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiting.arm(continuation)
            Task {
                await outcomes.record(event)
                waiting.resume()
            }
            timer = LoopTimer.schedule(in: limit) { waiting.resume() }
        }
        timer?.cancel()
    }

    /// "2 s", "0.5 s".
    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds) s" }
        return String(format: "%g s", Double(seconds) + Double(attoseconds) / 1e18)
    }
}

/// A continuation resumed once, by whichever comes first.
final class OneResume: Sendable {
    private let continuation = Mutex<CheckedContinuation<Void, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<Void, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume() {
        continuation.withLock { $0.take() }?.resume()
    }
}

/// One decision against its deadline: whichever comes first, the decision's verdict or the deadline's refusal, is the
/// agent's answer.
final class DecisionRace: Sendable {
    /// The race of the decision this task runs, if it has a deadline.
    @TaskLocal static var current: DecisionRace?

    /// The decision was past its deadline when its hold would have begun: nothing more is recorded.
    struct Expired: Error {}

    private struct State {
        var answer: ToolCallVerdict?
        var waiting: CheckedContinuation<ToolCallVerdict, Never>?
        var expired = false
        var disarmed = false
    }

    private let state = Mutex(State())

    /// Lets one log line a second through, and counts the rest.
    final class LogLimiter: Sendable {
        private let state = Mutex((last: ContinuousClock.Instant?.none, suppressed: 0))

        /// The lines held back since the last one let through, or `nil` to hold this one back.
        func admit() -> Int? {
            state.withLock { state in
                if let last = state.last, last.duration(to: .now) < .seconds(1) {
                    state.suppressed += 1
                    return nil
                }
                defer { state = (.now, 0) }
                return state.suppressed
            }
        }
    }

    /// The deadline's warnings, process-wide.
    static let logLimiter = LogLimiter()

    /// The decision's verdict, unless the deadline answered first (`false`).
    func finish(_ verdict: ToolCallVerdict) -> Bool {
        settle(verdict, expiring: false)
    }

    /// The deadline's refusal, unless the decision answered first or its deadline was lifted (`false`).
    func expire(_ refusal: ToolCallVerdict) -> Bool {
        settle(refusal, expiring: true)
    }

    /// Lifts the deadline (a hold begins); `false` when it had already passed.
    func disarm() -> Bool {
        state.withLock { state in
            if state.expired { return false }
            state.disarmed = true
            return true
        }
    }

    private func settle(_ verdict: ToolCallVerdict, expiring: Bool) -> Bool {
        let (won, waiting) = state.withLock { state -> (Bool, CheckedContinuation<ToolCallVerdict, Never>?) in
            guard state.answer == nil, !(expiring && state.disarmed) else { return (false, nil) }
            state.answer = verdict
            state.expired = expiring
            defer { state.waiting = nil }
            return (true, state.waiting)
        }
        if won { waiting?.resume(returning: verdict) }
        return won
    }

    /// Waits for the answer.
    func answer() async -> ToolCallVerdict {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> ToolCallVerdict? in
                if let answer = state.answer { return answer }
                state.waiting = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }
}
