/// How much of a stdio server's stderr reaches the gateway's log: at most ``linesPerSecond`` lines in any one-second
/// window (a window opens with the first line read after the previous one closed), each cut to ``maxLineBytes`` bytes. The lines
/// past that are counted, not logged, and the count is logged as one line ("… N lines of stderr suppressed") before the
/// next line that is, or when the server's stderr ends. A server that floods its stderr costs the log
/// ``linesPerSecond`` lines a second, plus one.
///
/// ```swift
/// var limit = StderrRateLimit()
/// if case .log(let suppressed) = limit.admit(at: .now) { /* log "… suppressed" if suppressed > 0, then the line */ }
/// ```
public struct StderrRateLimit: Sendable {
    /// Lines logged per second per child.
    public static let defaultLinesPerSecond = 20
    /// A longer line is cut there, and says so.
    public static let defaultMaxLineBytes = 2048

    public let linesPerSecond: Int
    public let maxLineBytes: Int
    private var windowStart: ContinuousClock.Instant?
    private var loggedInWindow = 0
    private var suppressed = 0

    public enum Verdict: Equatable, Sendable {
        /// Log the line, after a line saying that this many before it were not.
        case log(suppressedBefore: Int)
        case suppress
    }

    public init(linesPerSecond: Int = Self.defaultLinesPerSecond, maxLineBytes: Int = Self.defaultMaxLineBytes) {
        self.linesPerSecond = linesPerSecond
        self.maxLineBytes = maxLineBytes
    }

    /// Whether a line read at `now` is logged.
    public mutating func admit(at now: ContinuousClock.Instant) -> Verdict {
        if let start = windowStart, now - start < .seconds(1) {
            guard loggedInWindow < linesPerSecond else {
                suppressed += 1
                return .suppress
            }
        } else {
            windowStart = now
            loggedInWindow = 0
        }
        loggedInWindow += 1
        defer { suppressed = 0 }
        return .log(suppressedBefore: suppressed)
    }

    /// The lines suppressed since the last one logged (to report when the stream ends); resets the count.
    public mutating func finish() -> Int {
        defer { suppressed = 0 }
        return suppressed
    }

    /// A line as logged: its text, cut to ``maxLineBytes`` with a note when it was longer (`truncated`: the reader
    /// already cut it).
    public func text(of line: [UInt8], truncated: Bool = false) -> String {
        guard line.count > maxLineBytes || truncated else { return String(decoding: line, as: UTF8.self) }
        return String(decoding: line.prefix(maxLineBytes), as: UTF8.self) + " … (line cut at \(maxLineBytes) bytes)"
    }
}
