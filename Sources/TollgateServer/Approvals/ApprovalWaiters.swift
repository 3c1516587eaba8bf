import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TollgateCore
import TollgatePostgres

/// Wakes held calls when their approval changes: one task reads the rows of every approval someone waits for each
/// time the log may have grown (a commit in this process, or a `NOTIFY` from another), and at least once a second
/// (the polling fallback), and hands each waiter its approval once its version has moved on.
///
/// ```swift
/// let seen = waiters.generation
/// let approval = try await book.load(id)
/// let newer = await waiters.wait(for: id, after: approval.version, seen: seen, until: deadline)   // nil: look again
/// ```
final class ApprovalWaiters: Service, Sendable {
    private struct Waiter {
        var version: Int64
        var continuation: CheckedContinuation<Approval?, Never>
    }

    private struct State {
        var waiters: [UUID: [Int: Waiter]] = [:]
        var nextID = 0
        var held = 0
        var stopped = false
    }

    private let book: ApprovalBook
    private let signal: ChangeSignal
    private let pollInterval: Duration
    private let logger: Logger
    private let state = Mutex(State())

    /// The most calls held at once (`limits.max_held_calls`).
    let maxHeld: Int

    init(book: ApprovalBook, maxHeld: Int = 1000, pollInterval: Duration = .seconds(1), logger: Logger) {
        self.book = book
        self.maxHeld = maxHeld
        self.signal = book.store.changes
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// Note this before reading an approval, and pass it to `wait`: a change that lands in between is not missed.
    var generation: UInt64 { signal.generation }

    /// Takes one of the `maxHeld` places for a held call; `false` when all are taken or the gateway is stopping (then
    /// the call is not held: its agent is told at once that it is pending).
    func enter() -> Bool {
        state.withLock { state in
            guard !state.stopped, state.held < maxHeld else { return false }
            state.held += 1
            return true
        }
    }

    func leave() {
        state.withLock { $0.held -= 1 }
    }

    /// Whether the gateway is stopping: held calls stop waiting and answer their agents.
    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Waits until the approval is past `version`, `deadline` passes, or the task is cancelled. Returns the newer
    /// approval, or `nil` when the caller should read it again itself (time is up, or the log changed since `seen`).
    func wait(for approvalID: UUID, after version: Int64, seen: UInt64, until deadline: Date) async -> Approval? {
        guard signal.generation == seen else { return nil }
        let delay = deadline.timeIntervalSinceNow
        guard delay > 0 else { return nil }
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(Int64((delay * 1000).rounded(.up))))
            self.resume(approvalID, id, with: nil)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Approval?, Never>) in
                let cancelled = state.withLock { state -> Bool in
                    if Task.isCancelled || state.stopped { return true }
                    state.waiters[approvalID, default: [:]][id] = Waiter(version: version, continuation: continuation)
                    return false
                }
                if cancelled { continuation.resume(returning: nil) }
            }
        } onCancel: {
            self.resume(approvalID, id, with: nil)
        }
    }

    private func resume(_ approvalID: UUID, _ id: Int, with approval: Approval?) {
        let waiter = state.withLock { state -> Waiter? in
            let waiter = state.waiters[approvalID]?.removeValue(forKey: id)
            if state.waiters[approvalID]?.isEmpty == true { state.waiters.removeValue(forKey: approvalID) }
            return waiter
        }
        waiter?.continuation.resume(returning: approval)
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let seen = self.signal.generation
                // Each approval waited for, with the oldest version a waiter has seen: only rows past it are read.
                let known = self.state.withLock { state in
                    state.waiters.mapValues { waiters in waiters.values.map(\.version).min() ?? 0 }
                }
                if !known.isEmpty {
                    do {
                        self.deliver(try await self.book.load(newerThan: known))
                    } catch {
                        self.logger.warning("cannot read the approvals held calls wait for; retrying", metadata: ["error": "\(error)"])
                    }
                }
                await self.signal.wait(after: seen, timeout: self.pollInterval)
            }
        }
        // Shutting down: every held call looks once more and answers its agent.
        let all = state.withLock { state -> [Waiter] in
            let all = state.waiters.values.flatMap(\.values)
            state.waiters = [:]
            state.stopped = true
            return all
        }
        for waiter in all { waiter.continuation.resume(returning: nil) }
    }

    private func deliver(_ approvals: [UUID: Approval]) {
        let ready = state.withLock { state -> [(Waiter, Approval)] in
            var ready: [(Waiter, Approval)] = []
            for (approvalID, approval) in approvals {
                guard var waiters = state.waiters[approvalID] else { continue }
                for (id, waiter) in waiters where approval.version > waiter.version {
                    ready.append((waiter, approval))
                    waiters.removeValue(forKey: id)
                }
                state.waiters[approvalID] = waiters.isEmpty ? nil : waiters
            }
            return ready
        }
        for (waiter, approval) in ready { waiter.continuation.resume(returning: approval) }
    }
}
