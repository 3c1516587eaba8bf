import Testing

@testable import TollgateCore

/// The lexical half of JSON that ``CanonicalJSON``, ``JSONSourceReader`` and TollgateMCP's `JSONScanner` share.
@Suite struct JSONLexerTests {
    /// The string literal `literal` (quotes included) read from offset 0.
    static func lex(_ literal: [UInt8]) -> Result<(JSONLexer.StringToken, String), JSONLexer.Failure> {
        do {
            let token = try JSONLexer.string(in: literal, at: 0)
            return .success((token, JSONLexer.value(in: literal, of: token)))
        } catch {
            return .failure(error)
        }
    }

    static func lex(_ literal: String) -> Result<(JSONLexer.StringToken, String), JSONLexer.Failure> { lex(Array(literal.utf8)) }

    /// The scalars ``JSONLexer/forEachScalar(in:of:_:)`` hands over, as a string.
    static func scalars(_ literal: [UInt8], _ token: JSONLexer.StringToken) -> String {
        var scalars = String.UnicodeScalarView()
        JSONLexer.forEachScalar(in: literal, of: token) { scalars.append($0) }
        return String(scalars)
    }

    // MARK: - Escapes

    static let escapes: [(String, String)] = [
        (#""plain""#, "plain"), (#""""#, ""), (#""\"\\\/""#, "\"\\/"), (#""\b\f\n\r\t""#, "\u{08}\u{0C}\n\r\t"),
        (#""\u0041\u00e9\u00E9""#, "Aéé"), (#""a\u0000b""#, "a\u{0}b"), (#""\u2028""#, "\u{2028}"),
        (#""é then \n then ü""#, "é then \n then ü"), (#""\ud83d\ude00""#, "😀"), (#""\uD83D\uDE00x""#, "😀x"),
        (#""\udbff\udfff""#, "\u{10FFFF}"), (#""\ud800\udc00""#, "\u{10000}"),
    ]

    @Test(arguments: escapes)
    func escapesAndSurrogatePairsDecode(literal: String, expected: String) throws {
        let bytes = Array(literal.utf8)
        let (token, value) = try Self.lex(bytes).get()
        #expect(value == expected)
        #expect(Self.scalars(bytes, token) == expected, "forEachScalar agrees with value")
        #expect(token.content == 1..<(bytes.count - 1))
        #expect(token.end == bytes.count)
        #expect(token.hasEscapes == literal.contains("\\"))
    }

    static let badEscapes: [(String, JSONLexer.Problem, Int)] = [
        (#""a\x""#, .unknownEscape(UInt8(ascii: "x")), 2), (#""\U0041""#, .unknownEscape(UInt8(ascii: "U")), 1),
        (#""\u12""#, .badUnicodeEscape, 1), (#""\u12g4""#, .badUnicodeEscape, 1), (#""\u""#, .badUnicodeEscape, 1),
        // Lone and misordered surrogates.
        (#""\ud800""#, .loneSurrogate, 1), (#""ab\udc00""#, .loneSurrogate, 3), (#""\ud800x""#, .loneSurrogate, 1),
        (#""\ud800\n""#, .loneSurrogate, 1), (#""\ud800\u0041""#, .loneSurrogate, 1), (#""\ud800\ud800""#, .loneSurrogate, 1),
        (#""\ude00\ud83d""#, .loneSurrogate, 1), (#""\ud800\udc0""#, .badUnicodeEscape, 7),
        // The input ends inside the string.
        (#""open"#, .unterminatedString, 5), (#""\"#, .unterminatedString, 2), (#""\""#, .unterminatedString, 3), ("\"", .unterminatedString, 1),
    ]

    @Test(arguments: badEscapes)
    func badEscapesAreRefusedAtTheirBackslash(literal: String, problem: JSONLexer.Problem, offset: Int) {
        #expect(throws: JSONLexer.Failure(problem, at: offset)) { try Self.lex(literal).get() }
    }

    // MARK: - UTF-8 and control characters

    static let badUTF8: [([UInt8], Int)] = [
        ([0x22, 0xC3, 0x28, 0x22], 1),  // a continuation byte missing
        ([0x22, 0x80, 0x22], 1),  // a lone continuation byte
        ([0x22, 0xC0, 0x80, 0x22], 1), ([0x22, 0xC1, 0xBF, 0x22], 1),  // overlong forms of U+0000 and U+007F
        ([0x22, 0xE0, 0x80, 0x80, 0x22], 1), ([0x22, 0xE0, 0x9F, 0xBF, 0x22], 1),  // overlong three-byte forms
        ([0x22, 0xF0, 0x80, 0x80, 0x80, 0x22], 1), ([0x22, 0xF0, 0x8F, 0xBF, 0xBF, 0x22], 1),  // overlong four-byte forms
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 1), ([0x22, 0xED, 0xBF, 0xBF, 0x22], 1),  // UTF-16 surrogates written as UTF-8
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1), ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], 1),  // past U+10FFFF
        ([0x22, 0xFE, 0x22], 1), ([0x22, 0xFF, 0x22], 1),
        ([0x22, 0x61, 0xE2, 0x82, 0x22], 2),  // cut short by the closing quote
        ([0x22, 0x61, 0xF0, 0x9F, 0x98], 2),  // cut short by the end of the input
    ]

    @Test(arguments: badUTF8)
    func invalidAndOverlongUTF8IsRefused(bytes: [UInt8], offset: Int) {
        #expect(throws: JSONLexer.Failure(.invalidUTF8, at: offset)) { try Self.lex(bytes).get() }
    }

    @Test func theEdgesOfValidUTF8AreAccepted() throws {
        for scalar: Unicode.Scalar in ["\u{80}", "\u{7FF}", "\u{800}", "\u{D7FF}", "\u{E000}", "\u{FFFF}", "\u{10000}", "\u{10FFFF}"] {
            let bytes = [0x22] + Array(String(scalar).utf8) + [0x22]
            let (token, value) = try Self.lex(bytes).get()
            #expect(value == String(scalar))
            #expect(Self.scalars(bytes, token) == String(scalar))
            #expect(!token.isPrintableASCII && !token.hasEscapes)
        }
    }

    @Test func rawControlCharactersAreRefusedButDeleteIsNot() throws {
        for byte in UInt8(0)..<0x20 {
            #expect(throws: JSONLexer.Failure(.controlCharacter, at: 2)) { try Self.lex([0x22, 0x61, byte, 0x22]).get() }
        }
        let (token, value) = try Self.lex([0x22, 0x61, 0x7F, 0x22]).get()
        #expect(value == "a\u{7F}")
        #expect(!token.isPrintableASCII, "DEL is written escaped in canonical JSON")
        #expect(try Self.lex(#""a ~""#).get().0.isPrintableASCII)
        let escaped = try Self.lex(#""a\n""#).get().0
        #expect(escaped.isPrintableASCII && escaped.hasEscapes, "an escape is printable bytes; canonical JSON still rewrites it")
    }

    /// Random bytes between quotes, without `"` or `\`: the lexer accepts exactly what is UTF-8 without control
    /// characters, and reads what Swift's own UTF-8 validation reads.
    @Test func arbitraryBytesAreReadAsSwiftReadsThem() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [
            0x00, 0x1F, 0x20, 0x41, 0x7E, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0,
            0xF4, 0xF5, 0xFF,
        ]
        for _ in 0..<20_000 {
            let content = (0..<Int.random(in: 0...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            let expected = String(validating: content, as: UTF8.self).flatMap { text in
                text.unicodeScalars.contains { $0.value < 0x20 } ? nil : text
            }
            let bytes = [0x22] + content + [0x22]
            switch Self.lex(bytes) {
            case .success(let (token, value)):
                #expect(value == expected, "\(content)")
                #expect(Self.scalars(bytes, token) == expected, "\(content)")
            case .failure(let failure):
                #expect(expected == nil, "\(content) refused: \(failure)")
            }
        }
    }

    // MARK: - Numbers, words, whitespace

    static let numbers: [(String, Int, Bool)] = [
        ("0", 1, true), ("-0", 2, true), ("12", 2, true), ("12,", 2, true), ("-3.25", 5, false), ("1e9", 3, false),
        ("1E+9]", 4, false), ("2.5e-3}", 6, false), ("12345678901234567890", 20, true), ("0.0", 3, false),
    ]

    @Test(arguments: numbers)
    func numbersEndWhereTheGrammarSays(text: String, end: Int, isInteger: Bool) throws {
        let token = try JSONLexer.number(in: Array(text.utf8), at: 0)
        #expect(token.range == 0..<end)
        #expect(token.isInteger == isInteger)
    }

    static let badNumbers: [(String, JSONLexer.Problem)] = [
        ("-", .numberWithoutDigits), ("-x", .numberWithoutDigits), ("-.5", .numberWithoutDigits), ("01", .leadingZero),
        ("-00", .leadingZero), ("1.", .fractionWithoutDigits), ("1.e3", .fractionWithoutDigits), ("1e", .exponentWithoutDigits),
        ("1e+", .exponentWithoutDigits), ("1.5E-x", .exponentWithoutDigits),
    ]

    @Test(arguments: badNumbers)
    func badNumbersAreRefusedAtTheirStart(text: String, problem: JSONLexer.Problem) {
        #expect(throws: JSONLexer.Failure(problem, at: 1)) { try JSONLexer.number(in: Array((" " + text).utf8), at: 1) }
    }

    @Test func wordsAndWhitespace() {
        let bytes = Array(" \t\r\n true fals null".utf8)
        #expect(JSONLexer.skipWhitespace(in: bytes, from: 0) == 5)
        #expect(JSONLexer.skipWhitespace(in: bytes, from: 5) == 5)
        #expect(JSONLexer.skipWhitespace(in: Array("  ".utf8), from: 0) == 2)
        #expect(JSONLexer.hasWord("true", in: bytes, at: 5))
        #expect(!JSONLexer.hasWord("false", in: bytes, at: 10), "cut short")
        #expect(JSONLexer.hasWord("null", in: bytes, at: 15))
        #expect(!JSONLexer.hasWord("null", in: bytes, at: 16), "past the end")
    }

    // MARK: - The readers on top

    /// The readers that share the lexer report its problems in its words, at its place.
    @Test func canonicalJSONAndTheSourceReaderReportTheLexersProblem() {
        let cases: [(String, JSONLexer.Problem, Int)] = [
            (#"{"a":"\ud800"}"#, .loneSurrogate, 6), (#"["x\q"]"#, .unknownEscape(UInt8(ascii: "q")), 3),
            ("[\"a\u{1}\"]", .controlCharacter, 3), ("[01]", .leadingZero, 1), ("[1.]", .fractionWithoutDigits, 1),
            (#"{"k":"\u00G0"}"#, .badUnicodeEscape, 6),
        ]
        for (text, problem, offset) in cases {
            #expect(throws: CanonicalJSON.Failure(message: problem.description, offset: offset)) {
                try CanonicalJSON.canonicalize(Array(text.utf8))
            }
            #expect(throws: JSONValue.ParseError(message: problem.description, line: 1, column: offset + 1)) {
                try JSONValue(parsing: text)
            }
        }
    }

    /// Nesting: each reader takes `maxDepth` containers one inside the other, and refuses one more.
    @Test func depthIsCountedAlikeByTheReaders() {
        for depth in [1, 2, 5, 64] {
            let fits = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let over = "[" + fits + "]"
            #expect(throws: Never.self) { try CanonicalJSON.canonicalize(Array(fits.utf8), maxDepth: depth) }
            #expect(throws: CanonicalJSON.Failure.self) { try CanonicalJSON.canonicalize(Array(over.utf8), maxDepth: depth) }
            #expect(throws: Never.self) { try JSONValue(parsing: fits, maxDepth: depth) }
            #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: over, maxDepth: depth) }
        }
    }
}
