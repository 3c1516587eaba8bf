import Foundation

/// Canonical JSON straight from JSON bytes, without building a ``JSONValue``: the same text as
/// ``JSONValue/canonicalJSON`` (keys sorted by their UTF-8 bytes, no whitespace, numbers in their shortest form,
/// strings escaped one way), several times faster. What the audit seal hashes for every event.
///
/// ```swift
/// let bytes = try CanonicalJSON.canonicalize(Array(#"{ "b": 1.0, "a": [true] }"#.utf8))   // {"a":[true],"b":1}
/// ```
public enum CanonicalJSON {
    /// Why the bytes are not one JSON value, and where (a byte offset).
    public struct Failure: Error, CustomStringConvertible, Sendable, Equatable {
        public var message: String
        public var offset: Int
        public var description: String { "byte \(offset): \(message)" }
    }

    public static func canonicalize(_ bytes: [UInt8], maxDepth: Int = 512) throws(Failure) -> [UInt8] {
        var canonicalizer = Canonicalizer(maxDepth: maxDepth)
        let result = bytes.withUnsafeBytes { input in
            Result { () throws(Failure) -> [UInt8] in try canonicalizer.canonicalize(input) { Array($0) } }
        }
        return try result.get()
    }

    /// Canonicalizes one document after another, keeping its scratch space between them: for hashing many in a row
    /// (`tollgate audit verify`) without allocating for each.
    ///
    /// ```swift
    /// var canonicalizer = CanonicalJSON.Canonicalizer()
    /// for document in documents { try canonicalizer.canonicalize(document) { hasher.update(bufferPointer: $0) } }
    /// ```
    public struct Canonicalizer {
        private var writer: Writer

        public init(maxDepth: Int = 512) {
            writer = Writer(input: UnsafeBufferPointer(start: nil, count: 0), maxDepth: maxDepth)
        }

        /// Hands the canonical form of `input` to `body`; the bytes are valid only during the call.
        public mutating func canonicalize<R>(
            _ input: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R
        ) throws(Failure) -> R {
            writer.start(input.bindMemory(to: UInt8.self))
            defer { writer.input = UnsafeBufferPointer(start: nil, count: 0) }
            writer.skipWhitespace()
            try writer.value(depth: 0)
            writer.skipWhitespace()
            guard writer.index == writer.input.count else { throw writer.failure("unexpected text after the JSON value") }
            return writer.output.withUnsafeBytes { body($0) }
        }
    }

    private struct Writer {
        var input: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var index = 0
        var output: [UInt8] = []
        // Scratch space shared by every object, used as stacks (an inner object finishes before its outer one goes
        // on), so objects allocate nothing of their own.
        var texts: [Range<Int>] = []
        var keys: [Range<Int>] = []
        var keyStore: [UInt8] = []
        var order: [Int] = []
        var moved: [UInt8] = []

        init(input: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.input = input
            self.maxDepth = maxDepth
        }

        /// Begins a document, keeping the scratch space's capacity (a failed document may have left entries in it).
        mutating func start(_ input: UnsafeBufferPointer<UInt8>) {
            self.input = input
            index = 0
            output.removeAll(keepingCapacity: true)
            output.reserveCapacity(input.count)
            texts.removeAll(keepingCapacity: true)
            keys.removeAll(keepingCapacity: true)
            keyStore.removeAll(keepingCapacity: true)
        }

        func failure(_ message: String) -> Failure { Failure(message: message, offset: index) }

        mutating func skipWhitespace() {
            index = JSONLexer.skipWhitespace(in: input, from: index)
        }

        /// What the lexer reads, its problems as this canonicalizer's failures.
        func lexed<T>(_ body: () throws(JSONLexer.Failure) -> T) throws(Failure) -> T {
            do {
                return try body()
            } catch {
                throw Failure(message: error.problem.description, offset: error.offset)
            }
        }

        mutating func value(depth: Int) throws(Failure) {
            guard index < input.count else { throw failure("the JSON ends where a value should be") }
            switch input[index] {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""):
                let token = try string()
                if token.isPrintableASCII && !token.hasEscapes {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: input[(token.content.lowerBound - 1)..<token.end]))
                } else {
                    output.append(UInt8(ascii: "\""))
                    JSONLexer.forEachScalar(in: input, of: token) { Self.write($0, to: &output) }
                    output.append(UInt8(ascii: "\""))
                }
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw failure("a JSON value cannot start with \(Self.describe(input[index]))")
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            guard JSONLexer.hasWord(word, in: input, at: index) else { throw failure("unknown word") }
            index += word.utf8CodeUnitCount
            output.append(contentsOf: UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
        }

        mutating func array(depth: Int) throws(Failure) {
            guard depth <= maxDepth else { throw failure("nested more than \(maxDepth) deep") }
            index += 1
            output.append(UInt8(ascii: "["))
            skipWhitespace()
            if index < input.count, input[index] == UInt8(ascii: "]") {
                index += 1
                output.append(UInt8(ascii: "]"))
                return
            }
            while true {
                skipWhitespace()
                try value(depth: depth)
                skipWhitespace()
                guard index < input.count else { throw failure("the array is not closed") }
                if input[index] == UInt8(ascii: ",") {
                    index += 1
                    output.append(UInt8(ascii: ","))
                } else if input[index] == UInt8(ascii: "]") {
                    index += 1
                    output.append(UInt8(ascii: "]"))
                    return
                } else {
                    throw failure("expected , or ] in an array")
                }
            }
        }

        mutating func object(depth: Int) throws(Failure) {
            guard depth <= maxDepth else { throw failure("nested more than \(maxDepth) deep") }
            index += 1
            skipWhitespace()
            if index < input.count, input[index] == UInt8(ascii: "}") {
                index += 1
                output.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")])
                return
            }
            // Each member is written to the end of `output` as it is read (`"key":value`), and remembered by where its
            // key's bytes and its text lie; then the members are put back in key order.
            let objectStart = output.count
            let firstMember = keys.count
            let keyStoreStart = keyStore.count
            defer {
                keys.removeSubrange(firstMember...)
                texts.removeSubrange(firstMember...)
                keyStore.removeSubrange(keyStoreStart...)
            }
            while true {
                skipWhitespace()
                guard index < input.count, input[index] == UInt8(ascii: "\"") else { throw failure("expected a member name in quotes") }
                let textStart = output.count
                let keyStart = keyStore.count
                let token = try string()
                if token.isPrintableASCII && !token.hasEscapes {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: input[(token.content.lowerBound - 1)..<token.end]))
                    keyStore.append(contentsOf: UnsafeBufferPointer(rebasing: input[token.content]))
                } else {
                    output.append(UInt8(ascii: "\""))
                    JSONLexer.forEachScalar(in: input, of: token) { scalar in
                        Self.write(scalar, to: &output)
                        keyStore.append(contentsOf: UTF8.encode(scalar)!)
                    }
                    output.append(UInt8(ascii: "\""))
                }
                let key = keyStart..<keyStore.count
                skipWhitespace()
                guard index < input.count, input[index] == UInt8(ascii: ":") else { throw failure("expected : after a member name") }
                index += 1
                skipWhitespace()
                output.append(UInt8(ascii: ":"))
                // An object inside uses the stacks above this member's entries, and leaves them as it found them.
                try value(depth: depth)
                keys.append(key)
                texts.append(textStart..<output.count)
                skipWhitespace()
                guard index < input.count else { throw failure("the object is not closed") }
                if input[index] == UInt8(ascii: ",") {
                    index += 1
                } else if input[index] == UInt8(ascii: "}") {
                    index += 1
                    break
                } else {
                    throw failure("expected , or } in an object")
                }
            }
            let count = keys.count - firstMember
            order.removeAll(keepingCapacity: true)
            order.append(contentsOf: firstMember..<keys.count)
            var duplicate: Int?
            keyStore.withUnsafeBufferPointer { store in
                let base = store.baseAddress
                let keys = self.keys
                /// Bytewise order of two keys: memcmp over the shorter, then the shorter first.
                func compare(_ a: Int, _ b: Int) -> Int32 {
                    let left = keys[a]
                    let right = keys[b]
                    let common = min(left.count, right.count)
                    if common > 0, let base {
                        let result = memcmp(base + left.lowerBound, base + right.lowerBound, common)
                        if result != 0 { return result }
                    }
                    return left.count == right.count ? 0 : (left.count < right.count ? -1 : 1)
                }
                order.sort { compare($0, $1) < 0 }
                for position in order.indices.dropFirst() where compare(order[position], order[position - 1]) == 0 {
                    duplicate = order[position]
                    break
                }
            }
            if let duplicate {
                throw failure("the member name \(String(decoding: keyStore[keys[duplicate]], as: UTF8.self)) appears twice")
            }
            // The members were written one after the other, without commas: put them back in key order with them.
            moved.removeAll(keepingCapacity: true)
            moved.append(contentsOf: output[objectStart...])
            output.removeSubrange(objectStart...)
            output.reserveCapacity(output.count + moved.count + count + 1)
            output.append(UInt8(ascii: "{"))
            moved.withUnsafeBufferPointer { moved in
                for (position, member) in order.enumerated() {
                    if position > 0 { output.append(UInt8(ascii: ",")) }
                    let range = texts[member]
                    output.append(
                        contentsOf: UnsafeBufferPointer(rebasing: moved[(range.lowerBound - objectStart)..<(range.upperBound - objectStart)]))
                }
            }
            output.append(UInt8(ascii: "}"))
        }

        /// Checks the string at its opening quote and moves past it.
        mutating func string() throws(Failure) -> JSONLexer.StringToken {
            let input = self.input
            let index = self.index
            let token = try lexed { () throws(JSONLexer.Failure) in try JSONLexer.string(in: input, at: index) }
            self.index = token.end
            return token
        }

        mutating func number() throws(Failure) {
            let input = self.input
            let start = index
            let token = try lexed { () throws(JSONLexer.Failure) in try JSONLexer.number(in: input, at: start) }
            index = token.range.upperBound
            let plainInteger = token.isInteger
            let text = UnsafeBufferPointer(rebasing: input[start..<index])
            // Short integers are written as they are (their shortest form), without a round trip through Double.
            if plainInteger, text.count <= 15, !(text.count > 1 && text[0] == UInt8(ascii: "-") && text[1] == UInt8(ascii: "0")) {
                output.append(contentsOf: text)
                return
            }
            guard let value = Double(String(decoding: text, as: UTF8.self)) else { throw failure("not a number") }
            output.append(contentsOf: (value.isFinite ? CanonicalNumber.format(value) : "null").utf8)
        }

        /// Writes one scalar of a string's content, escaped the canonical way.
        static func write(_ scalar: Unicode.Scalar, to output: inout [UInt8]) {
            switch scalar {
            case "\"": output.append(contentsOf: [0x5C, 0x22])
            case "\\": output.append(contentsOf: [0x5C, 0x5C])
            case "\n": output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case "\r": output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case "\t": output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case "\u{08}": output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case "\u{0C}": output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            default:
                if JSONValue.needsEscape(scalar) {
                    let hex = Array(String(scalar.value, radix: 16).utf8)
                    output.append(contentsOf: [0x5C, UInt8(ascii: "u")])
                    output.append(contentsOf: [UInt8](repeating: UInt8(ascii: "0"), count: 4 - hex.count) + hex)
                } else {
                    output.append(contentsOf: UTF8.encode(scalar)!)
                }
            }
        }

        static func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "`\(Character(Unicode.Scalar(byte)))`" : "byte 0x\(String(byte, radix: 16))"
        }
    }
}
