import Synchronization

/// What `/readyz` reports besides the database: the parts that must have started before traffic is welcome.
public final class Readiness: Sendable {
    private let missing = Mutex<Set<String>>([])

    public init(waitingFor parts: Set<String> = []) {
        missing.withLock { $0 = parts }
    }

    /// Marks `part` as up (or down again).
    public func set(_ part: String, ready: Bool) {
        missing.withLock { missing in
            if ready { missing.remove(part) } else { missing.insert(part) }
        }
    }

    /// One line per part that is not ready yet.
    public var problems: [String] {
        missing.withLock { $0.sorted().map { "\($0) not ready" } }
    }
}
