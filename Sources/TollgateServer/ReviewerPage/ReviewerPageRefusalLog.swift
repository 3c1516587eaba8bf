import Logging
import Synchronization

/// Log lines for requests the page refused before anyone signed in (a wrong token, a form from another site, a missing
/// CSRF token): anyone who can reach the gateway can send those, so at most one line a second is written, with the
/// number refused since the previous line (`refused_since`).
final class ReviewerPageRefusalLog: Sendable {
    private let logger: Logger
    private let state = Mutex<(last: ContinuousClock.Instant?, unlogged: Int)>((nil, 0))

    init(logger: Logger) {
        self.logger = logger
    }

    func refused(_ message: Logger.Message, metadata: Logger.Metadata = [:]) {
        let now = ContinuousClock.now
        let unlogged: Int? = state.withLock { state in
            if let last = state.last, now - last < .seconds(1) {
                state.unlogged += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.unlogged
        }
        guard let unlogged else { return }
        var fields = metadata
        if unlogged > 0 { fields["refused_since"] = "\(unlogged)" }
        logger.warning(message, metadata: fields)
    }
}
