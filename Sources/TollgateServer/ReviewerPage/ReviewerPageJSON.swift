import TollgateCore

/// A call's arguments as the reviewer page shows them: indented JSON with keys sorted, in HTML, where every character
/// that cannot be seen or that reorders the text around it (``Swift/String/isInvisible(_:)``) is written as its
/// `\u202E` escape inside `<mark class="invisible">`, so that `acct_1\u202E9999` cannot pass for another account.
enum ReviewerPageJSON {
    /// The HTML of `value` pretty-printed, and how many invisible characters it has.
    static func html(_ value: JSONValue) -> (html: String, invisibles: Int) {
        var output = ""
        var invisibles = 0
        write(value, indent: 0, to: &output, invisibles: &invisibles)
        return (output, invisibles)
    }

    private static func write(_ value: JSONValue, indent: Int, to output: inout String, invisibles: inout Int) {
        let padding = String(repeating: "  ", count: indent + 1)
        let closing = String(repeating: "  ", count: indent)
        switch value {
        case .null, .bool, .number: output += value.canonicalJSON
        case .string(let text): string(text, to: &output, invisibles: &invisibles)
        case .array(let items):
            guard !items.isEmpty else { return output += "[]" }
            output += "[\n"
            for (index, item) in items.enumerated() {
                output += padding
                write(item, indent: indent + 1, to: &output, invisibles: &invisibles)
                output += index < items.count - 1 ? ",\n" : "\n"
            }
            output += closing + "]"
        case .object(let members):
            guard !members.isEmpty else { return output += "{}" }
            output += "{\n"
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                output += padding
                string(key, to: &output, invisibles: &invisibles)
                output += ": "
                write(members[key]!, indent: indent + 1, to: &output, invisibles: &invisibles)
                output += index < keys.count - 1 ? ",\n" : "\n"
            }
            output += closing + "}"
        }
    }

    /// A JSON string literal (controls escaped as JSON does), HTML-escaped, with invisible characters marked.
    static func string(_ text: String, to output: inout String, invisibles: inout Int) {
        let literal = JSONValue.string(text).canonicalJSON
        guard literal.unicodeScalars.contains(where: String.isInvisible) else { return output += HTML.escape(literal) }
        var plain = ""
        for scalar in literal.unicodeScalars {
            if String.isInvisible(scalar) {
                output += HTML.escape(plain)
                plain = ""
                invisibles += 1
                let escaped = String(scalar).escapingInvisibles()
                output += "<mark class=\"invisible\" title=\"an invisible character, U+\(String(scalar.value, radix: 16, uppercase: true))\">"
                output += HTML.escape(escaped) + "</mark>"
            } else {
                plain.unicodeScalars.append(scalar)
            }
        }
        output += HTML.escape(plain)
    }

    /// Text a reviewer reads (a tool's name, a reason) with invisible characters marked the same way.
    static func text(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: String.isInvisible) else { return HTML.escape(text) }
        var output = ""
        var plain = ""
        for scalar in text.unicodeScalars {
            if String.isInvisible(scalar) {
                output += HTML.escape(plain)
                plain = ""
                output += "<mark class=\"invisible\">" + HTML.escape(String(scalar).escapingInvisibles()) + "</mark>"
            } else {
                plain.unicodeScalars.append(scalar)
            }
        }
        return output + HTML.escape(plain)
    }
}
