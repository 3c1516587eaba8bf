/// The log levels a configuration may name, least severe first; the same words as swift-log's `Logger.Level`.
enum LogLevel: String, CaseIterable {
    case trace
    case debug
    case info
    case notice
    case warning
    case error
    case critical
}
