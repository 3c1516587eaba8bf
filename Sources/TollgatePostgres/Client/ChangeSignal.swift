import NIOCore
import Synchronization

/// A counter that goes up whenever something may have changed, and lets tasks wait for it to go up.
///
/// The waiting side reads `generation` *before* it reads the state it cares about, then waits for a newer
/// generation: a change that lands in between is never missed.
///
/// ```swift
/// let seen = signal.generation
/// if try readNewEvents().isEmpty { await signal.wait(after: seen, timeout: .milliseconds(500)) }
/// ```
public final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var generation: UInt64 { state.withLock { $0.generation } }

    /// Moves the generation on and wakes every waiter.
    public func bump() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            let waiters = Array(state.waiters.values)
            state.waiters = [:]
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the generation is past `seen`, after `timeout`, or when the task is cancelled.
    public func wait(after seen: UInt64, timeout: Duration) async {
        let id = state.withLock { state -> UInt64? in
            // Already past `seen` (a busy log): no timer to start and stop.
            guard state.generation == seen else { return nil }
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        guard let id else { return }
        let timer = LoopTimer.schedule(in: timeout) { self.wake(id) }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let already = state.withLock { state -> Bool in
                    if state.generation != seen || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if already { continuation.resume() }
            }
        } onCancel: {
            self.wake(id)
        }
    }

    private func wake(_ id: UInt64) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume()
    }
}
