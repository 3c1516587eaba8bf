import NIOCore

/// One measured call, kept for `--samples-file`: when it was due (from the start of the measurement) and how long it
/// took from then, to see when a run's slow calls happened (all at once, every second, ...), not only how many.
struct LoadSample: Sendable {
    var due: TimeAmount
    var latency: TimeAmount
    var ok: Bool

    /// The file's header line.
    static let header = "due_ms\tlatency_us\tok"

    /// One line: the due time in milliseconds (3 decimals), the latency in microseconds, 1 or 0.
    var line: String {
        let dueMicros = due.nanoseconds / 1000
        let fraction = String(abs(dueMicros % 1000))
        let padded = String(repeating: "0", count: 3 - fraction.count) + fraction
        return "\(dueMicros / 1000).\(padded)\t\(latency.nanoseconds / 1000)\t\(ok ? 1 : 0)"
    }
}

extension ResponseOutcome {
    /// Whether the call counts as ok (a result, `isError` or not, as in the report's `ok` and `tool errors`).
    var isOK: Bool {
        if case .result = self { return true }
        return false
    }
}
