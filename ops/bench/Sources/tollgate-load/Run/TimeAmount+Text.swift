import NIOCore

extension TimeAmount {
    /// `10 s`, `250 ms`, `1.5 s`: for messages and the text report.
    var shortDescription: String {
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000) s" }
        if nanoseconds >= 1_000_000_000 { return "\(format(Double(nanoseconds) / 1e9, decimals: 3)) s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000) ms" }
        return "\(format(Double(nanoseconds) / 1e6, decimals: 3)) ms"
    }

    /// Parses `10s`, `500ms`, `1.5m`, `2h`, `250us`, `100ns`; a bare number is seconds.
    init?(parsing text: String) {
        let number = text.prefix(while: { $0.isNumber || $0 == "." })
        let unit = text.dropFirst(number.count).trimmingPrefix(" ")
        guard let value = Double(number), value.isFinite, value >= 0 else { return nil }
        let scale: Double
        switch unit {
        case "ns": scale = 1
        case "us", "µs": scale = 1e3
        case "ms": scale = 1e6
        case "", "s": scale = 1e9
        case "m", "min": scale = 60e9
        case "h": scale = 3600e9
        default: return nil
        }
        let nanoseconds = (value * scale).rounded()
        guard nanoseconds < 1e18 else { return nil }
        self = .nanoseconds(Int64(nanoseconds))
    }
}
