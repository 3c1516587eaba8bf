/// Reads a JSON document into ``SourceNode``s with line and column, within ``SourceLimits``.
///
/// Strict RFC 8259: no comments, no trailing commas, no `NaN`. Recursion is bounded by `maxDepth`.
struct JSONSourceReader {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private var nodes = 0
    private let limits: SourceLimits

    struct Failure: Error {
        var code: SourceDiagnostic.Code
        var message: String
        var location: SourcePosition
    }

    init(text: String, limits: SourceLimits) {
        self.bytes = Array(text.utf8)
        self.limits = limits
    }

    mutating func read() throws(Failure) -> SourceNode {
        skipWhitespace()
        let node = try readValue(depth: 1)
        skipWhitespace()
        if index < bytes.count { throw fail("unexpected `\(describe(bytes[index]))` after the document") }
        return node
    }

    private var location: SourcePosition {
        // Columns count Unicode scalars: count the non-continuation bytes since the line start.
        var column = 1
        var cursor = lineStart
        while cursor < index && cursor < bytes.count {
            if bytes[cursor] & 0xC0 != 0x80 { column += 1 }
            cursor += 1
        }
        return SourcePosition(line: line, column: column)
    }

    private func fail(_ message: String, code: SourceDiagnostic.Code = .syntax) -> Failure {
        Failure(code: code, message: message, location: location)
    }

    private func describe(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): index += 1
            case UInt8(ascii: "\n"):
                index += 1
                line += 1
                lineStart = index
            default: return
            }
        }
    }

    private mutating func readValue(depth: Int) throws(Failure) -> SourceNode {
        guard index < bytes.count else { throw fail("the document ends where a value was expected") }
        nodes += 1
        if nodes > limits.maxNodes {
            throw fail("the document has more than \(limits.maxNodes) values", code: .tooManyNodes)
        }
        let start = location
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth <= limits.maxDepth else {
                throw fail("lists and mappings are nested more than \(limits.maxDepth) deep", code: .tooDeep)
            }
            return SourceNode(.mapping(try readObject(depth: depth)), at: start)
        case UInt8(ascii: "["):
            guard depth <= limits.maxDepth else {
                throw fail("lists and mappings are nested more than \(limits.maxDepth) deep", code: .tooDeep)
            }
            return SourceNode(.sequence(try readArray(depth: depth)), at: start)
        case UInt8(ascii: "\""):
            return SourceNode(.string(try readString()), at: start)
        case UInt8(ascii: "t"):
            try expectWord("true")
            return SourceNode(.bool(true), at: start)
        case UInt8(ascii: "f"):
            try expectWord("false")
            return SourceNode(.bool(false), at: start)
        case UInt8(ascii: "n"):
            try expectWord("null")
            return SourceNode(.null, at: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return SourceNode(.number(try readNumber()), at: start)
        default:
            throw fail("unexpected `\(describe(bytes[index]))` where a value was expected")
        }
    }

    private mutating func expectWord(_ word: String) throws(Failure) {
        let expected = Array(word.utf8)
        let count = expected.count
        let matches = index + count <= bytes.count && (0..<count).allSatisfy { bytes[index + $0] == expected[$0] }
        guard matches else { throw fail("unexpected `\(describe(bytes[index]))` where a value was expected") }
        index += count
    }

    private mutating func readObject(depth: Int) throws(Failure) -> [SourceNode.Member] {
        index += 1
        var members: [SourceNode.Member] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return members
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail(index < bytes.count ? "expected a quoted key" : "the document ends inside a mapping")
            }
            let keyLocation = location
            let key = try readString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected `:` after the key") }
            index += 1
            skipWhitespace()
            let value = try readValue(depth: depth + 1)
            members.append(SourceNode.Member(key: key, keyLocation: keyLocation, value: value))
            skipWhitespace()
            guard index < bytes.count else { throw fail("the document ends inside a mapping") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return members
            }
            throw fail("expected `,` or `}` in a mapping, found `\(describe(bytes[index]))`")
        }
    }

    private mutating func readArray(depth: Int) throws(Failure) -> [SourceNode] {
        index += 1
        var items: [SourceNode] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return items
        }
        while true {
            skipWhitespace()
            items.append(try readValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw fail("the document ends inside a list") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return items
            }
            throw fail("expected `,` or `]` in a list, found `\(describe(bytes[index]))`")
        }
    }

    private mutating func readNumber() throws(Failure) -> Double {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits() -> Int {
            let from = index
            while index < bytes.count && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9") { index += 1 }
            return index - from
        }
        let integerDigits = digits()
        guard integerDigits > 0 else { throw fail("a number needs digits") }
        if integerDigits > 1 && bytes[index - integerDigits] == UInt8(ascii: "0") { throw fail("numbers cannot start with 0") }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw fail("a number needs digits after `.`") }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard digits() > 0 else { throw fail("a number needs digits in its exponent") }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Double(text) else { throw fail("`\(text)` is not a number") }
        return value
    }

    private mutating func readString() throws(Failure) -> String {
        index += 1
        var runStart = index
        var result = ""
        func flush(_ end: Int) {
            if end > runStart { result += String(decoding: bytes[runStart..<end], as: UTF8.self) }
        }
        while true {
            guard index < bytes.count else { throw fail("the document ends inside a string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                flush(index)
                index += 1
                return result
            }
            if byte < 0x20 {
                throw fail("control characters must be escaped in strings")
            }
            if byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            flush(index)
            index += 1
            guard index < bytes.count else { throw fail("the document ends inside a string") }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): result += "\""
            case UInt8(ascii: "\\"): result += "\\"
            case UInt8(ascii: "/"): result += "/"
            case UInt8(ascii: "b"): result += "\u{08}"
            case UInt8(ascii: "f"): result += "\u{0C}"
            case UInt8(ascii: "n"): result += "\n"
            case UInt8(ascii: "r"): result += "\r"
            case UInt8(ascii: "t"): result += "\t"
            case UInt8(ascii: "u"):
                var code = try readHex4()
                if (0xD800..<0xDC00).contains(code) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("a high surrogate must be followed by a low surrogate")
                    }
                    index += 2
                    let low = try readHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("a high surrogate must be followed by a low surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("`\\u` escape is not a Unicode scalar") }
                result.unicodeScalars.append(scalar)
            default:
                throw fail("unknown escape `\\\(describe(escape))` in a string")
            }
            runStart = index
        }
    }

    private mutating func readHex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("`\\u` needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("`\\u` needs four hex digits")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}
