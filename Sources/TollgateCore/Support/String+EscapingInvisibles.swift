extension String {
    /// The text with every character a reader cannot see, or that changes how the characters around it are shown,
    /// written as an escape: `\u202E` (four hex digits, upper case), or `\u{E0041}` beyond the Basic Multilingual
    /// Plane. Everything else is kept as it is.
    ///
    /// Escaped: C0 and C1 controls and DEL (general category Cc), format characters (Cf: the bidirectional controls
    /// U+061C, U+200E, U+200F, U+202A–U+202E and U+2066–U+2069, zero-width spaces and joiners, U+FEFF, the tag
    /// characters), the line and paragraph separators U+2028 and U+2029, and every other default-ignorable code point
    /// (variation selectors, Hangul fillers, U+034F).
    ///
    /// For text a person reads to decide on a call (a reviewer's view of its arguments, tool and reasons), so that
    /// `transfer("acct_1\u{202E}9999")` cannot pass for something it is not. Escaping canonical JSON keeps it valid JSON
    /// for the same value (its controls are escaped already, and `\uXXXX` is a JSON escape), except for the `\u{...}`
    /// form. Output for scripts stays exact JSON and does not use this.
    ///
    /// ```swift
    /// "acct\u{202E}1".escapingInvisibles()  // acct\u202E1
    /// ```
    public func escapingInvisibles() -> String {
        guard unicodeScalars.contains(where: Self.isInvisible) else { return self }
        var result = ""
        result.reserveCapacity(utf8.count + 16)
        for scalar in unicodeScalars {
            if Self.isInvisible(scalar) {
                result += Self.escape(scalar)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Whether `scalar` is one ``escapingInvisibles()`` escapes.
    public static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        // Printable ASCII is by far the most common: decide it without looking up properties.
        if (0x20...0x7E).contains(scalar.value) { return false }
        let properties = scalar.properties
        switch properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: return true
        default: return properties.isDefaultIgnorableCodePoint
        }
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        if scalar.value > 0xFFFF { return "\\u{\(hex)}" }
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
