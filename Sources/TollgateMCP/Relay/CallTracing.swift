import Synchronization

/// Whether this process traces (set once, at start, when `tracing:` is configured). Without it the request path starts
/// no span at all, not even a no-op one: a call costs what it did before traces existed.
public enum CallTracing {
    public static let enabled = Atomic<Bool>(false)

    /// Whether spans are made.
    @inline(__always) public static var isOn: Bool { enabled.load(ordering: .relaxed) }
}
