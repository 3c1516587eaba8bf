/// One timer for every request a relay has in flight, instead of a sleeping task per request: each request keeps its
/// deadline, and the timer wakes the relay at the earliest one, which answers the requests whose time is up and arms
/// the timer again for the next. A request answered in time costs nothing here.
///
/// ```swift
/// timer.arm(at: deadline) { [weak self] in await self?.sweepExpired() }   // when a request goes out
/// timer.fired()                                                           // first thing in sweepExpired
/// ```
struct DeadlineTimer {
    private var task: Task<Void, Never>?
    private var wakeAt: ContinuousClock.Instant?

    /// Makes sure `fire` runs at `deadline` or earlier. A timer already set for an earlier moment is kept.
    mutating func arm(at deadline: ContinuousClock.Instant, fire: @escaping @Sendable () async -> Void) {
        if task != nil, let wakeAt, wakeAt <= deadline { return }
        task?.cancel()
        wakeAt = deadline
        task = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            guard !Task.isCancelled else { return }
            await fire()
        }
    }

    /// The timer went off: the next `arm` sets a new one.
    mutating func fired() {
        task = nil
        wakeAt = nil
    }

    mutating func cancel() {
        task?.cancel()
        fired()
    }
}
