extension GatewayConfigDecoder {
    static let uiKeys = ["session_idle_timeout", "session_lifetime"]

    /// `ui:`, the reviewer page's settings.
    mutating func decodeReviewerPage(_ node: SourceNode) -> ReviewerPageSettings {
        var settings = ReviewerPageSettings()
        guard let fields = members(of: node, at: "ui", allowed: Self.uiKeys, required: []) else { return settings }
        let durations: [(String, WritableKeyPath<ReviewerPageSettings, Duration>)] = [
            ("session_idle_timeout", \.sessionIdleTimeout), ("session_lifetime", \.sessionLifetime),
        ]
        for (key, path) in durations {
            guard let value = Self.value(fields, key), let resolved = numeric(value, at: "ui.\(key)"),
                let seconds = duration(resolved, at: "ui.\(key)")
            else { continue }
            guard ReviewerPageSettings.secondsRange.contains(seconds) else {
                report(
                    .invalidNumber, at: value.location, "ui.\(key)", "\(resolved.shortDescription) is out of range",
                    allowed: "a duration from 1s to 30d")
                continue
            }
            settings[keyPath: path] = .seconds(seconds)
        }
        return settings
    }
}
