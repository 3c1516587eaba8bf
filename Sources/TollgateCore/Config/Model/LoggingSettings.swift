/// How the gateway logs: the least severe level written, and the line format.
public struct LoggingSettings: Sendable, Equatable {
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical` (swift-log's `Logger.Level` raw values).
    public var level: String
    public var format: LogFormat

    public init(level: String = "info", format: LogFormat = .text) {
        self.level = level
        self.format = format
    }
}
