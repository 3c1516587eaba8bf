import NIOCore
import NIOPosix

/// Timers on SwiftNIO's event loops, for the waits on a call's path (a group commit's linger, the projector's
/// gathering, a pool waiter's timeout).
///
/// `Task.sleep` goes to libdispatch even when SwiftNIO runs Swift Concurrency (`tollgate` installs its event loops as
/// the global executor, which covers jobs but not delayed ones): each sleep wakes dispatch's timer thread to arm it
/// and a dispatch worker to fire it, which then hands the task back to an event loop. At 100 calls/s that was ten
/// `timerfd_settime` calls per tools/call. A timer here is armed on the event loop the caller runs on and fires there.
///
/// ```swift
/// try await LoopTimer.sleep(for: .milliseconds(50))            // throws CancellationError when cancelled
/// let timer = LoopTimer.schedule(in: .seconds(10)) { giveUp() } // runs on an event loop
/// timer.cancel()
/// ```
public enum LoopTimer {
    /// The event loop the caller runs on, when it is one of the process-wide group's
    /// (`MultiThreadedEventLoopGroup.singleton`, never shut down), so that a timer or a result handed to it cannot be
    /// lost to a loop that has stopped; `nil` elsewhere (a short-lived group's loop, a thread of Swift's own pool).
    public static var callerLoop: (any EventLoop)? {
        guard let current = MultiThreadedEventLoopGroup.currentEventLoop else { return nil }
        return MultiThreadedEventLoopGroup.singleton.makeIterator().first { $0 === current }
    }

    /// The caller's event loop, or one of the process-wide group's.
    static var loop: any EventLoop { callerLoop ?? MultiThreadedEventLoopGroup.singleton.any() }

    /// Runs `body` on an event loop after `delay`, unless cancelled first.
    @discardableResult
    public static func schedule(in delay: Duration, _ body: @escaping @Sendable () -> Void) -> Scheduled<Void> {
        loop.scheduleTask(in: TimeAmount(delay), body)
    }

    /// Waits `duration`; throws `CancellationError` if the task is cancelled meanwhile.
    public static func sleep(for duration: Duration) async throws {
        let scheduled = loop.scheduleTask(in: TimeAmount(duration)) {}
        do {
            try await withTaskCancellationHandler {
                try await scheduled.futureResult.get()
            } onCancel: {
                scheduled.cancel()
            }
        } catch {
            throw CancellationError()
        }
    }
}
