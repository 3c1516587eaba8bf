/// How numbers are read from YAML plain scalars and written in the canonical form.
enum CanonicalNumber {
    /// `60`, not `60.0`; `0.5`; `1.0e+20` (a `.` before the exponent, so YAML 1.1 readers see a float).
    static func format(_ value: Double) -> String {
        if value.isNaN { return ".nan" }
        if value.isInfinite { return value < 0 ? "-.inf" : ".inf" }
        if value == value.rounded(), abs(value) < 1e15 {
            return String(Int64(value))
        }
        var text = "\(value)"
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }), !text[..<e].contains(".") {
            text.insert(contentsOf: ".0", at: e)
        }
        return text
    }

    /// A decimal number as YAML and JSON write it (`12`, `-0.5`, `1e3`, `1_000` is not one); `nil` otherwise.
    static func parseDecimal(_ text: String) -> Double? {
        var sawDigit = false
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= 400 else { return nil }
        if utf8[index] == UInt8(ascii: "-") || utf8[index] == UInt8(ascii: "+") { index = utf8.index(after: index) }
        var sawDot = false
        var sawExponent = false
        while index < utf8.endIndex {
            let byte = utf8[index]
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: ".") where !sawDot && !sawExponent: sawDot = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                guard sawDigit, !sawExponent else { return nil }
                sawExponent = true
                sawDigit = false
                let next = utf8.index(after: index)
                if next < utf8.endIndex, utf8[next] == UInt8(ascii: "-") || utf8[next] == UInt8(ascii: "+") { index = next }
            default: return nil
            }
            index = utf8.index(after: index)
        }
        guard sawDigit else { return nil }
        return Double(text.hasPrefix("+") ? String(text.dropFirst()) : text)
    }
}
