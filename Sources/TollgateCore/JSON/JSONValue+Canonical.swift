extension JSONValue {
    /// Compact JSON with object keys sorted by their UTF-8 bytes and numbers in their shortest form (`60`, `0.5`).
    /// Equal values give equal text, so the text can be hashed. Non-finite numbers, which JSON cannot carry, are
    /// written as `null`.
    public var canonicalJSON: String {
        var output = ""
        write(to: &output, limit: .max)
        return output
    }

    /// ``canonicalJSON`` cut to about `limit` characters with `…`, for messages.
    func compactText(limit: Int) -> String {
        var output = ""
        write(to: &output, limit: limit)
        return output.count > limit ? String(output.prefix(limit)) + "…" : output
    }

    private func write(to output: inout String, limit: Int) {
        if output.utf8.count > limit { return }
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let value): output += value.isFinite ? CanonicalNumber.format(value) : "null"
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let items):
            output += "["
            for (index, item) in items.enumerated() {
                if index > 0 { output += "," }
                item.write(to: &output, limit: limit)
                if output.utf8.count > limit { return }
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, key) in members.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { output += "," }
                Self.writeString(key, to: &output)
                output += ":"
                members[key]!.write(to: &output, limit: limit)
                if output.utf8.count > limit { return }
            }
            output += "}"
        }
    }

    /// A JSON string literal: `"`, `\` and control characters escaped, everything else as is.
    static func writeString(_ value: String, to output: inout String) {
        output += "\""
        // Most strings (names, ids, hashes) are printable ASCII with nothing to escape: appended whole.
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            output += value
            output += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            default:
                if Self.needsEscape(scalar) {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }

    /// Control characters, and the characters YAML treats as line breaks or refuses unescaped, so the same literal is
    /// valid JSON and valid YAML.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF: true
        default: false
        }
    }
}
