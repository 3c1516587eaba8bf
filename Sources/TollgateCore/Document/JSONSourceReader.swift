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

    private var location: SourcePosition { location(at: index) }

    /// Where `offset` is, on the line being read.
    private func location(at offset: Int) -> SourcePosition {
        // Columns count Unicode scalars: count the non-continuation bytes since the line start.
        var column = 1
        var cursor = lineStart
        while cursor < offset && cursor < bytes.count {
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

    private mutating func expectWord(_ word: StaticString) throws(Failure) {
        guard JSONLexer.hasWord(word, in: bytes, at: index) else { throw fail("unexpected `\(describe(bytes[index]))` where a value was expected") }
        index += word.utf8CodeUnitCount
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
        let range = try lexed { () throws(JSONLexer.Failure) in try JSONLexer.number(in: bytes, at: index).range }
        index = range.upperBound
        let text = String(decoding: bytes[range], as: UTF8.self)
        guard let value = Double(text) else { throw fail("`\(text)` is not a number") }
        return value
    }

    private mutating func readString() throws(Failure) -> String {
        let token = try lexed { () throws(JSONLexer.Failure) in try JSONLexer.string(in: bytes, at: index) }
        index = token.end
        return JSONLexer.value(in: bytes, of: token)
    }

    /// What the lexer reads, its problems as this reader's failures, located where the lexer found them (a string
    /// or a number is on one line, so the line is still right).
    private func lexed<T>(_ body: () throws(JSONLexer.Failure) -> T) throws(Failure) -> T {
        do {
            return try body()
        } catch {
            throw Failure(code: .syntax, message: error.problem.description, location: location(at: error.offset))
        }
    }
}
