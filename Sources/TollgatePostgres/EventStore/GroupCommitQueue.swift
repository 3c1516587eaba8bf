import NIOCore
import Synchronization

/// Requests from concurrent callers committed together, a group per transaction (group commit): each caller submits
/// its own request and gets its own result, and `commit` sees the requests queued meanwhile as one group.
///
/// ```swift
/// let queue = GroupCommitQueue<Request, Outcome>(maxGroupSize: 32, maxConcurrentGroups: 1) { group in
///     await commitInOneTransaction(group)   // one result per request, in order
/// }
/// let outcome = try await queue.submit(request)
/// ```
///
/// With one group in flight (the default), requests that arrive while a commit is under way form the next group: the
/// busier the database, the bigger the groups.
public final class GroupCommitQueue<Request: Sendable, Outcome: Sendable>: Sendable {
    /// Commits one group (never empty) and returns one result per request, in the group's order.
    public typealias Commit = @Sendable ([Request]) async -> [Result<Outcome, any Error>]

    public let maxGroupSize: Int
    public let maxConcurrentGroups: Int
    private let commit: Commit
    private let state = Mutex(State())

    private struct Pending {
        var id: UInt64
        var request: Request
        var continuation: CheckedContinuation<Outcome, any Error>
        /// The event loop the caller was on: it is resumed there (see `drain`).
        var loop: (any EventLoop)?
    }

    private struct State {
        var pending: [Pending] = []
        var activeGroups = 0
        /// A lingering request's timer is running: requests that linger meanwhile are committed when it fires at the latest.
        var lingerTimerArmed = false
        var nextID: UInt64 = 0
    }

    public init(maxGroupSize: Int = 32, maxConcurrentGroups: Int = 1, commit: @escaping Commit) {
        self.maxGroupSize = max(1, maxGroupSize)
        self.maxConcurrentGroups = max(1, maxConcurrentGroups)
        self.commit = commit
    }

    /// Queues `request` and returns its result once its group has committed.
    ///
    /// - Parameter linger: how long the request may wait for company before it is committed alone (`nil`: a commit
    ///   starts at once when none is running). A request whose caller is not in a hurry then rides in the next group.
    ///
    /// A request whose task is cancelled while it waits for its group is taken out of the queue and never committed
    /// (`CancellationError`); once its group has started, it is committed (or not) with the group.
    public func submit(_ request: Request, linger: Duration? = nil) async throws -> Outcome {
        if Task.isCancelled { throw CancellationError() }
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await enqueue(request, id: id, linger: linger)
        } onCancel: {
            let pending = state.withLock { state -> Pending? in
                guard let index = state.pending.firstIndex(where: { $0.id == id }) else { return nil }
                return state.pending.remove(at: index)
            }
            pending?.continuation.resume(throwing: CancellationError())
        }
    }

    private func enqueue(_ request: Request, id: UInt64, linger: Duration?) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let armTimer = state.withLock { state -> Bool? in
                // Checked under the lock the cancellation handler takes: a cancellation is seen here or finds the request queued.
                if Task.isCancelled { return nil }
                state.pending.append(Pending(id: id, request: request, continuation: continuation, loop: LoopTimer.callerLoop))
                // A group commit under way takes this request when it is done (it drains the queue): no timer needed.
                guard linger != nil, state.activeGroups == 0, !state.lingerTimerArmed else { return false }
                state.lingerTimerArmed = true
                return true
            }
            guard let armTimer else {
                continuation.resume(throwing: CancellationError())
                return
            }
            if let linger {
                // Taken by the next group that starts meanwhile, or committed when the time is up. One timer serves
                // every lingering request queued while it runs (each waits at most `linger`), not a task per request.
                guard armTimer else { return }
                LoopTimer.schedule(in: linger) {
                    self.state.withLock { $0.lingerTimerArmed = false }
                    self.startGroupIfNeeded()
                }
            } else {
                startGroupIfNeeded()
            }
        }
    }

    /// Requests waiting for a group commit, and group commits running (for tests).
    public var queueState: (queued: Int, activeGroups: Int) { state.withLock { ($0.pending.count, $0.activeGroups) } }

    /// Starts committing queued requests, unless nothing waits or as many groups as allowed are already at it.
    private func startGroupIfNeeded() {
        let start = state.withLock { state -> Bool in
            guard !state.pending.isEmpty, state.activeGroups < maxConcurrentGroups else { return false }
            state.activeGroups += 1
            return true
        }
        if start { Task { await self.drain() } }
    }

    /// Commits queued requests in groups until the queue is empty.
    private func drain() async {
        while true {
            let group = state.withLock { state -> [Pending]? in
                if state.pending.isEmpty {
                    state.activeGroups -= 1
                    return nil
                }
                let count = min(maxGroupSize, state.pending.count)
                let group = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return group
            }
            guard let group else { return }
            let results = await commit(group.map(\.request))
            // Each caller goes on where it was: its request's connection and the agent's are on that event loop, so
            // the rest of its call runs there without hopping between loops. One hand-over per other loop.
            var elsewhere: [ObjectIdentifier: (loop: any EventLoop, resumes: [@Sendable () -> Void])] = [:]
            for (index, pending) in group.enumerated() {
                let result = index < results.count ? results[index] : .failure(GroupCommitError.noResult)
                let continuation = pending.continuation
                guard let loop = pending.loop, !loop.inEventLoop else {
                    continuation.resume(with: result)
                    continue
                }
                elsewhere[ObjectIdentifier(loop), default: (loop, [])].resumes.append { continuation.resume(with: result) }
            }
            for (loop, resumes) in elsewhere.values { loop.execute { for resume in resumes { resume() } } }
        }
    }
}

/// A group commit that returned fewer results than it had requests (a bug in its `commit`).
public enum GroupCommitError: Error {
    case noResult
}
