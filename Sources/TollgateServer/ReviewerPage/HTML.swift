import TollgateCore

/// Text made safe for the reviewer page's HTML. Every value that did not come from the page's own code goes through
/// ``escape(_:)`` (or ``text(_:)``), in element content and in quoted attribute values alike.
///
/// ```swift
/// "<td>" + HTML.text(approval.request.tool) + "</td>"   // <td>&lt;script&gt;\u202E…</td>
/// ```
enum HTML {
    /// `&`, `<`, `>`, `"` and `'` as character references.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }

    /// Text a reviewer reads to decide on a call (tool, agent, arguments, reasons), for element content: characters
    /// that cannot be seen or that reorder the text around them written as `\u202E` escapes
    /// (``Swift/String/escapingInvisibles()``) in `<mark class="invisible">`, the rest escaped for HTML. (In an
    /// attribute, use `escape(text.escapingInvisibles())`.)
    static func text(_ text: String) -> String {
        ReviewerPageJSON.text(text)
    }

    /// A percent-encoded query value (for links that keep a page's filters).
    static func queryValue(_ text: String) -> String {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".unicodeScalars)
        var result = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if byte < 0x80, allowed.contains(scalar) {
                result.unicodeScalars.append(scalar)
            } else {
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
