/// Durations as policies write them: `second`, `minute`, `hour`, `day`, or a count and a unit (`90s`, `15m`, `2h`,
/// `1d`); a bare number is seconds.
enum PolicyDuration {
    static let names: [(String, Int)] = [("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400)]
    static let units: [(Character, Int)] = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]
    /// Ten years: long enough for any window, short enough to never overflow.
    static let maxSeconds = 10 * 366 * 86400

    /// Seconds, or `nil` if the text is not a duration.
    static func parse(_ text: String) -> Int? {
        if let named = names.first(where: { $0.0 == text }) { return named.1 }
        guard let unitCharacter = text.last, let unit = units.first(where: { $0.0 == unitCharacter }) else { return nil }
        let digits = text.dropLast()
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let count = Int(digits) else {
            return nil
        }
        let seconds = count * unit.1
        return seconds > 0 && seconds <= maxSeconds ? seconds : nil
    }

    /// A duration for messages: `90s`, `15m`, `1h`.
    static func human(_ seconds: Int) -> String {
        for (unit, length) in units where seconds % length == 0 {
            return "\(seconds / length)\(unit)"
        }
        return "\(seconds)s"
    }

    /// The canonical spelling: a name when there is one, else the largest unit that divides the length.
    static func format(_ seconds: Int) -> String {
        if let named = names.first(where: { $0.1 == seconds }) { return named.0 }
        for (unit, length) in units where seconds % length == 0 {
            return "\(seconds / length)\(unit)"
        }
        return "\(seconds)s"
    }
}
