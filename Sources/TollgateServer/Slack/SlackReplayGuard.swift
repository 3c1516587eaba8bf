import Foundation
import Synchronization

/// The signatures of the Slack requests this process took in the last ``SlackSignature/tolerance`` × 2, so the same
/// signed request sent again (a replay of a captured click) is refused rather than taken twice. Slack never sends an
/// interaction twice. Per process: across gateways the approval's own rules still decide at most once (one grant per
/// reviewer, one decision per request).
final class SlackReplayGuard: Sendable {
    /// Signatures kept at most; past it the oldest are dropped (a request older than the window is refused by its
    /// timestamp anyway).
    static let capacity = 100_000

    private struct State {
        var seen: [String: Date] = [:]
        var order: [(signature: String, at: Date)] = []
        var head = 0
    }

    private let state = Mutex(State())
    private let keep: TimeInterval

    init(keep: TimeInterval = SlackSignature.tolerance * 2) {
        self.keep = keep
    }

    /// Records `signature`; `false` when it was already taken within the window.
    func firstUse(_ signature: String, now: Date) -> Bool {
        state.withLock { state in
            while state.head < state.order.count,
                state.order[state.head].at < now.addingTimeInterval(-keep) || state.order.count - state.head >= Self.capacity
            {
                let dropped = state.order[state.head]
                if state.seen[dropped.signature] == dropped.at { state.seen[dropped.signature] = nil }
                state.head += 1
            }
            if state.head > 1024, state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
            guard state.seen[signature] == nil else { return false }
            state.seen[signature] = now
            state.order.append((signature, now))
            return true
        }
    }
}
