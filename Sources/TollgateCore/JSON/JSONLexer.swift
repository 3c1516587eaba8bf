/// The lexical half of JSON (RFC 8259), shared by every JSON reader in Tollgate: strings (escapes, `\u` and surrogate
/// pairs, UTF-8 checked strictly), numbers, the three words and whitespace. Each reader keeps its own structure and
/// its own reason to exist on top of it: ``CanonicalJSON`` (canonical bytes for the audit seal), `JSONScanner` in
/// TollgateMCP (value ranges without a tree, and the repeated-key refusal) and ``JSONSourceReader`` (located nodes for
/// policy and configuration files, with line and column).
///
/// A string is read in two steps, so a reader that only needs to know where a string ends pays for nothing more:
/// ``string(in:at:)`` checks it and says where its content lies and whether it has escapes; ``value(in:of:)`` or
/// ``forEachScalar(in:of:_:)`` then decode it, which cannot fail.
///
/// ```swift
/// let bytes = Array(#""caf\u00e9""#.utf8)
/// let token = try JSONLexer.string(in: bytes, at: 0)   // content 1..<11, hasEscapes
/// JSONLexer.value(in: bytes, of: token)                // "café"
/// ```
///
/// The functions are generic over the byte collection (`[UInt8]`, `UnsafeBufferPointer<UInt8>`, ...) and inlinable,
/// so each reader gets a version specialized for its storage, in its own module.
public enum JSONLexer {
    /// What is wrong with the bytes at a ``Failure``'s offset.
    public enum Problem: Sendable, Hashable, CustomStringConvertible {
        /// The input ends inside a string (the offset is the end of the input).
        case unterminatedString
        /// A byte below 0x20 inside a string, which must be escaped there.
        case controlCharacter
        /// A backslash followed by anything but `" \ / b f n r t u` (the offset is the backslash).
        case unknownEscape(UInt8)
        /// `\u` without four hex digits after it (the offset is the backslash).
        case badUnicodeEscape
        /// A `\u` escape of a UTF-16 surrogate that is not a high one followed by a `\u` low one (the offset is the
        /// first escape's backslash).
        case loneSurrogate
        /// Bytes that are not UTF-8: a bad lead byte, a missing continuation byte, an overlong form, a surrogate or a
        /// value past U+10FFFF (the offset is the sequence's first byte).
        case invalidUTF8
        /// A number without digits (`-`, `-x`); the offset of every number problem is the number's first byte.
        case numberWithoutDigits
        /// A number whose integer part has a leading zero (`01`).
        case leadingZero
        /// A number without digits after its decimal point (`1.`).
        case fractionWithoutDigits
        /// A number without digits in its exponent (`1e`).
        case exponentWithoutDigits

        public var description: String {
            switch self {
            case .unterminatedString: "the string is not closed"
            case .controlCharacter: "a control character in a string must be escaped"
            case .unknownEscape(let letter): "unknown escape `\\\(Self.describe(letter))` in a string"
            case .badUnicodeEscape: "`\\u` needs four hex digits"
            case .loneSurrogate: "a UTF-16 surrogate in a `\\u` escape must be a high one followed by a low one"
            case .invalidUTF8: "the text is not valid UTF-8"
            case .numberWithoutDigits: "a number needs digits"
            case .leadingZero: "a number cannot start with 0"
            case .fractionWithoutDigits: "a number needs digits after its decimal point"
            case .exponentWithoutDigits: "a number needs digits in its exponent"
            }
        }

        /// A byte as messages show it: the character when it is printable ASCII, else its value.
        public static func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? String(Character(Unicode.Scalar(byte))) : "byte 0x" + String(byte, radix: 16, uppercase: true)
        }
    }

    /// A lexical problem and the byte offset it is at.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var problem: Problem
        public var offset: Int

        @inlinable
        public init(_ problem: Problem, at offset: Int) {
            self.problem = problem
            self.offset = offset
        }

        public var description: String { "\(problem) at byte \(offset)" }
    }

    /// A checked string literal.
    public struct StringToken: Sendable, Hashable {
        /// The bytes between the quotes.
        public var content: Range<Int>
        /// Whether the content has a backslash escape; without one, the content is the value's UTF-8.
        public var hasEscapes: Bool
        /// Whether every byte of the content is printable ASCII (0x20 to 0x7E), so the literal is written as it is in
        /// any form of JSON, canonical included.
        public var isPrintableASCII: Bool
        /// Just after the closing quote.
        @inlinable public var end: Int { content.upperBound + 1 }

        @inlinable
        init(content: Range<Int>, hasEscapes: Bool, isPrintableASCII: Bool) {
            self.content = content
            self.hasEscapes = hasEscapes
            self.isPrintableASCII = isPrintableASCII
        }
    }

    /// A checked number literal.
    public struct NumberToken: Sendable, Hashable {
        public var range: Range<Int>
        /// No fraction and no exponent.
        public var isInteger: Bool

        @inlinable
        init(range: Range<Int>, isInteger: Bool) {
            self.range = range
            self.isInteger = isInteger
        }
    }

    // MARK: - Strings

    /// Checks the string literal whose opening quote is at `quote` (escapes, surrogate pairs, UTF-8, no raw control
    /// characters) without decoding it.
    @inlinable
    public static func string<Bytes: RandomAccessCollection>(in bytes: Bytes, at quote: Int) throws(Failure) -> StringToken
    where Bytes.Element == UInt8, Bytes.Index == Int {
        var index = quote + 1
        var hasEscapes = false
        var isPrintableASCII = true
        while true {
            // Printable ASCII other than `"` and `\` is most of most strings: one comparison chain a byte.
            while index < bytes.endIndex {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x7F { break }
                index += 1
            }
            guard index < bytes.endIndex else { throw Failure(.unterminatedString, at: index) }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                return StringToken(content: (quote + 1)..<index, hasEscapes: hasEscapes, isPrintableASCII: isPrintableASCII)
            case UInt8(ascii: "\\"):
                hasEscapes = true
                index = try escape(in: bytes, at: index).end
            case 0x7F:
                isPrintableASCII = false
                index += 1
            case 0..<0x20:
                throw Failure(.controlCharacter, at: index)
            default:
                isPrintableASCII = false
                index = try utf8Sequence(in: bytes, at: index)
            }
        }
    }

    /// The value of a checked string.
    @inlinable
    public static func value<Bytes: RandomAccessCollection>(in bytes: Bytes, of token: StringToken) -> String
    where Bytes.Element == UInt8, Bytes.Index == Int {
        guard token.hasEscapes else { return String(decoding: bytes[token.content], as: UTF8.self) }
        // Between escapes the content is UTF-8 already checked: decode it in runs, and only the escapes one by one.
        var result = ""
        var runStart = token.content.lowerBound
        var index = runStart
        while index < token.content.upperBound {
            guard bytes[index] == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            if runStart < index { result += String(decoding: bytes[runStart..<index], as: UTF8.self) }
            let escaped = try! escape(in: bytes, at: index)
            result.unicodeScalars.append(escaped.scalar)
            index = escaped.end
            runStart = index
        }
        if runStart < index { result += String(decoding: bytes[runStart..<index], as: UTF8.self) }
        return result
    }

    /// Hands `body` the Unicode scalars of a checked string, in order.
    @inlinable
    public static func forEachScalar<Bytes: RandomAccessCollection>(
        in bytes: Bytes, of token: StringToken, _ body: (Unicode.Scalar) -> Void
    ) where Bytes.Element == UInt8, Bytes.Index == Int {
        var index = token.content.lowerBound
        while index < token.content.upperBound {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                let escaped = try! escape(in: bytes, at: index)
                body(escaped.scalar)
                index = escaped.end
            } else if byte < 0x80 {
                body(Unicode.Scalar(byte))
                index += 1
            } else {
                let count = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
                var value = UInt32(byte) & (count == 2 ? 0x1F : count == 3 ? 0x0F : 0x07)
                for offset in 1..<count { value = value << 6 | UInt32(bytes[index + offset] & 0x3F) }
                body(Unicode.Scalar(value)!)
                index += count
            }
        }
    }

    /// The escape at `backslash`: what it stands for and where it ends. A `\u` escape of a high surrogate takes the
    /// `\u` escape of the low surrogate after it along.
    @inlinable
    static func escape<Bytes: RandomAccessCollection>(
        in bytes: Bytes, at backslash: Int
    ) throws(Failure) -> (scalar: Unicode.Scalar, end: Int) where Bytes.Element == UInt8, Bytes.Index == Int {
        guard backslash + 1 < bytes.endIndex else { throw Failure(.unterminatedString, at: bytes.endIndex) }
        let letter = bytes[backslash + 1]
        switch letter {
        case UInt8(ascii: "\""): return ("\"", backslash + 2)
        case UInt8(ascii: "\\"): return ("\\", backslash + 2)
        case UInt8(ascii: "/"): return ("/", backslash + 2)
        case UInt8(ascii: "b"): return ("\u{08}", backslash + 2)
        case UInt8(ascii: "f"): return ("\u{0C}", backslash + 2)
        case UInt8(ascii: "n"): return ("\n", backslash + 2)
        case UInt8(ascii: "r"): return ("\r", backslash + 2)
        case UInt8(ascii: "t"): return ("\t", backslash + 2)
        case UInt8(ascii: "u"):
            let first = try hex4(in: bytes, at: backslash)
            guard (0xD800..<0xDC00).contains(first) else {
                guard let scalar = Unicode.Scalar(first) else { throw Failure(.loneSurrogate, at: backslash) }
                return (scalar, backslash + 6)
            }
            let low = backslash + 6
            guard low + 1 < bytes.endIndex, bytes[low] == UInt8(ascii: "\\"), bytes[low + 1] == UInt8(ascii: "u") else {
                throw Failure(.loneSurrogate, at: backslash)
            }
            let second = try hex4(in: bytes, at: low)
            guard (0xDC00..<0xE000).contains(second) else { throw Failure(.loneSurrogate, at: backslash) }
            return (Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))!, low + 6)
        default:
            throw Failure(.unknownEscape(letter), at: backslash)
        }
    }

    /// The four hex digits of the `\u` escape at `backslash`.
    @inlinable
    static func hex4<Bytes: RandomAccessCollection>(in bytes: Bytes, at backslash: Int) throws(Failure) -> UInt32
    where Bytes.Element == UInt8, Bytes.Index == Int {
        guard backslash + 6 <= bytes.endIndex else { throw Failure(.badUnicodeEscape, at: backslash) }
        var value: UInt32 = 0
        for index in (backslash + 2)..<(backslash + 6) {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Failure(.badUnicodeEscape, at: backslash)
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// Checks the UTF-8 sequence whose first byte (not ASCII) is at `lead`, strictly (no overlong forms, no surrogates,
    /// nothing past U+10FFFF: RFC 3629), and returns where it ends.
    @inlinable
    static func utf8Sequence<Bytes: RandomAccessCollection>(in bytes: Bytes, at lead: Int) throws(Failure) -> Int
    where Bytes.Element == UInt8, Bytes.Index == Int {
        let count: Int
        // The second byte's range is narrower after the leads that could start an overlong form, a surrogate or a
        // value past U+10FFFF.
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch bytes[lead] {
        case 0xC2...0xDF: count = 2
        case 0xE0:
            count = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED:
            count = 3
            high = 0x9F
        case 0xF0:
            count = 4
            low = 0x90
        case 0xF1...0xF3: count = 4
        case 0xF4:
            count = 4
            high = 0x8F
        default: throw Failure(.invalidUTF8, at: lead)
        }
        guard lead + count <= bytes.endIndex, (low...high).contains(bytes[lead + 1]) else { throw Failure(.invalidUTF8, at: lead) }
        for index in (lead + 2)..<(lead + count) where bytes[index] & 0xC0 != 0x80 { throw Failure(.invalidUTF8, at: lead) }
        return lead + count
    }

    // MARK: - Numbers, words and whitespace

    /// Checks the number literal that starts at `start` (a `-` or a digit) and says where it ends.
    @inlinable
    public static func number<Bytes: RandomAccessCollection>(in bytes: Bytes, at start: Int) throws(Failure) -> NumberToken
    where Bytes.Element == UInt8, Bytes.Index == Int {
        func digits(from index: Int) -> Int {
            var index = index
            while index < bytes.endIndex, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            return index
        }
        var index = start
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let integer = index
        index = digits(from: integer)
        guard index > integer else { throw Failure(.numberWithoutDigits, at: start) }
        if bytes[integer] == UInt8(ascii: "0"), index - integer > 1 { throw Failure(.leadingZero, at: start) }
        var isInteger = true
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: ".") {
            let fraction = index + 1
            index = digits(from: fraction)
            guard index > fraction else { throw Failure(.fractionWithoutDigits, at: start) }
            isInteger = false
        }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            var exponent = index + 1
            if exponent < bytes.endIndex, bytes[exponent] == UInt8(ascii: "+") || bytes[exponent] == UInt8(ascii: "-") { exponent += 1 }
            index = digits(from: exponent)
            guard index > exponent else { throw Failure(.exponentWithoutDigits, at: start) }
            isInteger = false
        }
        return NumberToken(range: start..<index, isInteger: isInteger)
    }

    /// Whether `word` (`true`, `false` or `null`) is written at `index`.
    @inlinable
    public static func hasWord<Bytes: RandomAccessCollection>(_ word: StaticString, in bytes: Bytes, at index: Int) -> Bool
    where Bytes.Element == UInt8, Bytes.Index == Int {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.endIndex else { return false }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
        return true
    }

    /// The first index from `index` on that is not JSON whitespace (space, tab, line feed, carriage return).
    @inlinable
    public static func skipWhitespace<Bytes: RandomAccessCollection>(in bytes: Bytes, from index: Int) -> Int
    where Bytes.Element == UInt8, Bytes.Index == Int {
        var index = index
        while index < bytes.endIndex {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return index
            }
        }
        return index
    }
}
