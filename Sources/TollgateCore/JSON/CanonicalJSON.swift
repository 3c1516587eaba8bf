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
            while index < input.count {
                switch input[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws(Failure) {
            guard index < input.count else { throw failure("the JSON ends where a value should be") }
            switch input[index] {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""):
                if let plain = plainString() {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: input[(plain.lowerBound - 1)..<(plain.upperBound + 1)]))
                } else {
                    var scalars: [Unicode.Scalar] = []
                    try string(into: &scalars)
                    Self.write(scalars, to: &output)
                }
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw failure("a JSON value cannot start with \(Self.describe(input[index]))")
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard index + count <= input.count else { throw failure("unknown word") }
            for offset in 0..<count where input[index + offset] != word.utf8Start[offset] { throw failure("unknown word") }
            index += count
            output.append(contentsOf: UnsafeBufferPointer(start: word.utf8Start, count: count))
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
                if let plain = plainString() {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: input[(plain.lowerBound - 1)..<(plain.upperBound + 1)]))
                    keyStore.append(contentsOf: UnsafeBufferPointer(rebasing: input[plain]))
                } else {
                    var scalars: [Unicode.Scalar] = []
                    try string(into: &scalars)
                    Self.write(scalars, to: &output)
                    for scalar in scalars { keyStore.append(contentsOf: UTF8.encode(scalar)!) }
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

        /// At a string's opening quote: when the string is printable ASCII without escapes (so its canonical form is its
        /// bytes as they are), moves past it and returns the range of its content; otherwise moves nowhere, `nil`.
        mutating func plainString() -> Range<Int>? {
            var cursor = index + 1
            while cursor < input.count {
                let byte = input[cursor]
                if byte == UInt8(ascii: "\"") {
                    defer { index = cursor + 1 }
                    return (index + 1)..<cursor
                }
                // Escapes, control characters, DEL and non-ASCII take the careful path.
                if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x7F { return nil }
                cursor += 1
            }
            return nil
        }

        /// Reads a string literal (at its opening quote) into Unicode scalars.
        mutating func string(into scalars: inout [Unicode.Scalar]) throws(Failure) {
            index += 1
            while true {
                guard index < input.count else { throw failure("the string is not closed") }
                let byte = input[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return
                case UInt8(ascii: "\\"):
                    guard index + 1 < input.count else { throw failure("the string is not closed") }
                    let escaped = input[index + 1]
                    index += 2
                    switch escaped {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "u"):
                        let first = try hex4()
                        if (0xD800..<0xDC00).contains(first) {
                            guard index + 1 < input.count, input[index] == UInt8(ascii: "\\"), input[index + 1] == UInt8(ascii: "u") else {
                                throw failure("a lone UTF-16 surrogate in a \\u escape")
                            }
                            index += 2
                            let second = try hex4()
                            guard (0xDC00..<0xE000).contains(second) else { throw failure("a lone UTF-16 surrogate in a \\u escape") }
                            scalars.append(Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))!)
                        } else {
                            guard let scalar = Unicode.Scalar(first) else { throw failure("a lone UTF-16 surrogate in a \\u escape") }
                            scalars.append(scalar)
                        }
                    default:
                        throw failure("unknown escape \\\(Self.describe(escaped))")
                    }
                case 0..<0x20:
                    throw failure("a control character inside a string must be escaped")
                case 0..<0x80:
                    scalars.append(Unicode.Scalar(byte))
                    index += 1
                default:
                    // A multi-byte UTF-8 sequence, checked.
                    let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 0
                    guard length > 0, index + length <= input.count else { throw failure("the text is not valid UTF-8") }
                    var decoder = UTF8()
                    var iterator = UnsafeBufferPointer(rebasing: input[index..<(index + length)]).makeIterator()
                    guard case .scalarValue(let scalar) = decoder.decode(&iterator), iterator.next() == nil else {
                        throw failure("the text is not valid UTF-8")
                    }
                    scalars.append(scalar)
                    index += length
                }
            }
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard index + 4 <= input.count else { throw failure("a \\u escape needs four hex digits") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = input[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw failure("a \\u escape needs four hex digits")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        mutating func number() throws(Failure) {
            let start = index
            if input[index] == UInt8(ascii: "-") { index += 1 }
            func digits() -> Int {
                let from = index
                while index < input.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(input[index]) { index += 1 }
                return index - from
            }
            let integer = index
            guard digits() > 0 else { throw failure("a number needs digits") }
            if input[integer] == UInt8(ascii: "0"), index - integer > 1 { throw failure("a number cannot start with 0") }
            var plainInteger = true
            if index < input.count, input[index] == UInt8(ascii: ".") {
                index += 1
                plainInteger = false
                guard digits() > 0 else { throw failure("a number needs digits after its decimal point") }
            }
            if index < input.count, input[index] == UInt8(ascii: "e") || input[index] == UInt8(ascii: "E") {
                index += 1
                plainInteger = false
                if index < input.count, input[index] == UInt8(ascii: "+") || input[index] == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw failure("a number needs digits in its exponent") }
            }
            let text = UnsafeBufferPointer(rebasing: input[start..<index])
            // Short integers are written as they are (their shortest form), without a round trip through Double.
            if plainInteger, text.count <= 15, !(text.count > 1 && text[0] == UInt8(ascii: "-") && text[1] == UInt8(ascii: "0")) {
                output.append(contentsOf: text)
                return
            }
            guard let value = Double(String(decoding: text, as: UTF8.self)) else { throw failure("not a number") }
            output.append(contentsOf: (value.isFinite ? CanonicalNumber.format(value) : "null").utf8)
        }

        static func write(_ scalars: [Unicode.Scalar], to output: inout [UInt8]) {
            output.append(UInt8(ascii: "\""))
            for scalar in scalars {
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
            output.append(UInt8(ascii: "\""))
        }

        static func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "`\(Character(Unicode.Scalar(byte)))`" : "byte 0x\(String(byte, radix: 16))"
        }
    }
}
