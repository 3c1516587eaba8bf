import TollgateCore

/// A validating JSON scanner that finds where values are in a message's bytes without building them.
///
/// The relay forwards the bytes it received and reads only a few fields (`id`, `method`, `params.name`, ...), so it
/// needs the byte ranges of values, not a decoded tree: a tool list can then lose one element while every other byte,
/// number and key order stays as the upstream wrote it.
///
/// ```swift
/// let scanner = JSONScanner(bytes)
/// let members = try scanner.members(of: try scanner.document())   // top-level object's keys and value ranges
/// ```
struct JSONScanner {
    /// Why the bytes are not JSON, and where.
    struct Failure: Error, Equatable, CustomStringConvertible {
        var offset: Int
        var reason: String
        /// The key an object repeats, when that is what is wrong: the bytes are JSON, but JSON that peers read two ways
        /// (some keep the first of a repeated key, Python, Node and Go keep the last).
        var repeatedKey: String?
        var description: String { "\(reason) at byte \(offset)" }
    }

    /// One member of an object: its decoded key and where its value is.
    struct Member {
        var key: String
        var value: Range<Int>
    }

    let bytes: [UInt8]
    let maxDepth: Int

    init(_ bytes: [UInt8], maxDepth: Int = 128) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    /// Checks that the whole input is exactly one JSON value (surrounding whitespace allowed); returns its range.
    func document() throws(Failure) -> Range<Int> {
        var index = skipWhitespace(0)
        let start = index
        try skipValue(&index, depth: 0)
        let end = index
        index = skipWhitespace(index)
        guard index == bytes.count else { throw Failure(offset: index, reason: "unexpected data after the JSON value") }
        return start..<end
    }

    /// Checks the whole input as `document()` does and, when it is an object, gives its members as `members(of:)`
    /// would: one walk over the bytes instead of two.
    func documentMembers() throws(Failure) -> (root: Range<Int>, members: [Member]?) {
        var index = skipWhitespace(0)
        let start = index
        guard maxDepth > 0, index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return (try document(), nil) }
        let members = try readMembers(&index)
        let end = index
        index = skipWhitespace(index)
        guard index == bytes.count else { throw Failure(offset: index, reason: "unexpected data after the JSON value") }
        return (start..<end, members)
    }

    /// The members of the object at `range`, in the order written; `nil` when the value is not an object.
    func members(of range: Range<Int>) throws(Failure) -> [Member]? {
        guard range.lowerBound < bytes.count, bytes[range.lowerBound] == UInt8(ascii: "{") else { return nil }
        var index = range.lowerBound
        return try readMembers(&index)
    }

    /// Reads the object at `index` (its `{`), checking every member's key and value, and moves past its `}`.
    private func readMembers(_ index: inout Int) throws(Failure) -> [Member] {
        index = skipWhitespace(index + 1)
        var members: [Member] = []
        guard index < bytes.count else { throw Failure(offset: index, reason: "unexpected end of input") }
        if bytes[index] == UInt8(ascii: "}") {
            index += 1
            return members
        }
        var keys = KeySet()
        while true {
            let keyStart = index
            let key = try readString(&index)
            try keys.insert(key, at: keyStart)
            index = skipWhitespace(index)
            try expect(UInt8(ascii: ":"), &index)
            index = skipWhitespace(index)
            let valueStart = index
            try skipValue(&index, depth: 1)
            members.append(Member(key: key, value: valueStart..<index))
            index = skipWhitespace(index)
            guard index < bytes.count else { throw Failure(offset: index, reason: "unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") {
                index = skipWhitespace(index + 1)
                continue
            }
            try expect(UInt8(ascii: "}"), &index)
            return members
        }
    }

    /// The element ranges of the array at `range`; `nil` when the value is not an array.
    func elements(of range: Range<Int>) throws(Failure) -> [Range<Int>]? {
        guard range.lowerBound < bytes.count, bytes[range.lowerBound] == UInt8(ascii: "[") else { return nil }
        var index = skipWhitespace(range.lowerBound + 1)
        var result: [Range<Int>] = []
        if bytes[index] == UInt8(ascii: "]") { return result }
        while true {
            let start = index
            try skipValue(&index, depth: 1)
            result.append(start..<index)
            index = skipWhitespace(index)
            if bytes[index] == UInt8(ascii: ",") {
                index = skipWhitespace(index + 1)
                continue
            }
            return result
        }
    }

    /// The decoded string at `range`, `nil` when the value there is not a string.
    func string(at range: Range<Int>) -> String? {
        guard range.lowerBound < bytes.count, bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        var index = range.lowerBound
        return try? readString(&index)
    }

    /// The member `key` of the object at `range`.
    func member(_ key: String, of range: Range<Int>) throws(Failure) -> Range<Int>? {
        try members(of: range)?.first { $0.key == key }?.value
    }

    /// The keys of one object read so far. Every object of every message is checked: a repeated key is refused at any
    /// depth, so that the gateway and the peer it forwards to can never read different values from the same bytes.
    /// Keys compare as Swift strings (canonical equivalence), which refuses a little more than byte equality would
    /// (`"é"` and `"e\u0301"`), never less.
    private struct KeySet {
        private var few: [String] = []
        private var many: Set<String>?

        mutating func insert(_ key: String, at offset: Int) throws(Failure) {
            let isNew: Bool
            if many != nil {
                isNew = many!.insert(key).inserted
            } else if few.count < 16 {
                isNew = !few.contains(key)
                if isNew { few.append(key) }
            } else {
                many = Set(few)
                few = []
                isNew = many!.insert(key).inserted
            }
            guard isNew else {
                throw Failure(
                    offset: offset, reason: "the key \(JSONRPCWriter.string(String(key.prefix(64)))) appears twice in one object", repeatedKey: key)
            }
        }
    }

    // MARK: - Scanning

    func skipWhitespace(_ start: Int) -> Int {
        JSONLexer.skipWhitespace(in: bytes, from: start)
    }

    private func expect(_ byte: UInt8, _ index: inout Int) throws(Failure) {
        guard index < bytes.count else { throw Failure(offset: index, reason: "unexpected end of input") }
        guard bytes[index] == byte else {
            throw Failure(offset: index, reason: "expected `\(Character(Unicode.Scalar(byte)))`")
        }
        index += 1
    }

    private func skipValue(_ index: inout Int, depth: Int) throws(Failure) {
        guard index < bytes.count else { throw Failure(offset: index, reason: "unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw Failure(offset: index, reason: "nested deeper than \(maxDepth) levels") }
            index = skipWhitespace(index + 1)
            guard index < bytes.count else { throw Failure(offset: index, reason: "unexpected end of input") }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return
            }
            var keys = KeySet()
            while true {
                let keyStart = index
                try keys.insert(try readString(&index), at: keyStart)
                index = skipWhitespace(index)
                try expect(UInt8(ascii: ":"), &index)
                index = skipWhitespace(index)
                try skipValue(&index, depth: depth + 1)
                index = skipWhitespace(index)
                guard index < bytes.count else { throw Failure(offset: index, reason: "unexpected end of input") }
                if bytes[index] == UInt8(ascii: ",") {
                    index = skipWhitespace(index + 1)
                } else {
                    try expect(UInt8(ascii: "}"), &index)
                    return
                }
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw Failure(offset: index, reason: "nested deeper than \(maxDepth) levels") }
            index = skipWhitespace(index + 1)
            guard index < bytes.count else { throw Failure(offset: index, reason: "unexpected end of input") }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return
            }
            while true {
                try skipValue(&index, depth: depth + 1)
                index = skipWhitespace(index)
                guard index < bytes.count else { throw Failure(offset: index, reason: "unexpected end of input") }
                if bytes[index] == UInt8(ascii: ",") {
                    index = skipWhitespace(index + 1)
                } else {
                    try expect(UInt8(ascii: "]"), &index)
                    return
                }
            }
        case UInt8(ascii: "\""):
            try skipString(&index)
        case UInt8(ascii: "t"): try literal("true", &index)
        case UInt8(ascii: "f"): try literal("false", &index)
        case UInt8(ascii: "n"): try literal("null", &index)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try skipNumber(&index)
        default:
            throw Failure(offset: index, reason: "unexpected character")
        }
    }

    private func literal(_ word: StaticString, _ index: inout Int) throws(Failure) {
        guard JSONLexer.hasWord(word, in: bytes, at: index) else {
            let end = index + word.utf8CodeUnitCount > bytes.count
            throw Failure(offset: index, reason: end ? "unexpected end of input" : "invalid literal")
        }
        index += word.utf8CodeUnitCount
    }

    private func skipNumber(_ index: inout Int) throws(Failure) {
        index = try lexed { () throws(JSONLexer.Failure) in try JSONLexer.number(in: bytes, at: index).range.upperBound }
    }

    /// Checks the string at `index` and moves past it without building it, as skipping a value needs.
    private func skipString(_ index: inout Int) throws(Failure) {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            throw Failure(offset: index, reason: "expected a string")
        }
        index = try lexed { () throws(JSONLexer.Failure) in try JSONLexer.string(in: bytes, at: index).end }
    }

    /// Reads a string starting at its opening quote, decoding escapes; leaves `index` after the closing quote.
    func readString(_ index: inout Int) throws(Failure) -> String {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            throw Failure(offset: index, reason: "expected a string")
        }
        let token = try lexed { () throws(JSONLexer.Failure) in try JSONLexer.string(in: bytes, at: index) }
        index = token.end
        return JSONLexer.value(in: bytes, of: token)
    }

    /// What the lexer reads, its problems as this scanner's failures.
    private func lexed<T>(_ body: () throws(JSONLexer.Failure) -> T) throws(Failure) -> T {
        do {
            return try body()
        } catch {
            throw Failure(offset: error.offset, reason: error.problem.description)
        }
    }
}
