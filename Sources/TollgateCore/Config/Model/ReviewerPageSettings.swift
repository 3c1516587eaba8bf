/// The reviewer web page's settings (`ui:` in the configuration): how long its sign-in sessions last.
public struct ReviewerPageSettings: Sendable, Equatable {
    /// A session not used for this long ends (`ui.session_idle_timeout`).
    public var sessionIdleTimeout: Duration = .seconds(30 * 60)
    /// A session ends this long after sign-in, however much it is used (`ui.session_lifetime`).
    public var sessionLifetime: Duration = .seconds(12 * 60 * 60)

    public init(sessionIdleTimeout: Duration = .seconds(30 * 60), sessionLifetime: Duration = .seconds(12 * 60 * 60)) {
        self.sessionIdleTimeout = sessionIdleTimeout
        self.sessionLifetime = sessionLifetime
    }

    /// Bounds of both durations, in seconds: one second to 30 days.
    public static let secondsRange = 1...(30 * 24 * 60 * 60)
}
