import Foundation
import Testing

@testable import TollgateCore

@Suite("Escaping invisible characters for reviewers")
struct StringEscapingInvisiblesTests {
    @Test(arguments: [
        ("\u{202E}", "\\u202E"), ("\u{202A}", "\\u202A"), ("\u{202B}", "\\u202B"), ("\u{202C}", "\\u202C"), ("\u{202D}", "\\u202D"),
        ("\u{2066}", "\\u2066"), ("\u{2067}", "\\u2067"), ("\u{2068}", "\\u2068"), ("\u{2069}", "\\u2069"), ("\u{200E}", "\\u200E"),
        ("\u{200F}", "\\u200F"), ("\u{061C}", "\\u061C"),
    ])
    func bidiControlsAreEscaped(character: String, escaped: String) {
        #expect(character.escapingInvisibles() == escaped)
    }

    @Test(arguments: [
        ("\u{200B}", "\\u200B"), ("\u{200C}", "\\u200C"), ("\u{200D}", "\\u200D"), ("\u{2060}", "\\u2060"), ("\u{FEFF}", "\\uFEFF"),
        ("\u{00AD}", "\\u00AD"), ("\u{180E}", "\\u180E"), ("\u{FE0F}", "\\uFE0F"), ("\u{3164}", "\\u3164"), ("\u{2028}", "\\u2028"),
        ("\u{2029}", "\\u2029"), ("\u{E0041}", "\\u{E0041}"), ("\u{1D173}", "\\u{1D173}"),
    ])
    func zeroWidthAndOtherInvisibleCharactersAreEscaped(character: String, escaped: String) {
        #expect(character.escapingInvisibles() == escaped)
    }

    @Test func controlCharactersAreEscaped() {
        #expect("\u{0000}\u{0007}\t\n\r\u{001B}[31m\u{007F}".escapingInvisibles() == "\\u0000\\u0007\\u0009\\u000A\\u000D\\u001B[31m\\u007F")
        #expect("\u{0080}\u{0085}\u{009B}\u{009F}".escapingInvisibles() == "\\u0080\\u0085\\u009B\\u009F")
    }

    @Test func visibleTextIsKeptExactly() {
        for text in ["", "transfer", "acct_1234", "a \\u202E b", "Grüße, 東京 😀 👍🏽", "עברית and العربية", "x: {\"a\": [1, 2]}", "é"] {
            #expect(text.escapingInvisibles() == text, "\(text)")
        }
    }

    @Test func aDisguisedAccountShowsItsOverride() {
        // Rendered as "acct_1...9999" reversed; escaped, the reviewer sees what is really there.
        let argument = "acct_1\u{202E}9999\u{202C}"
        #expect(argument.escapingInvisibles() == "acct_1\\u202E9999\\u202C")
    }

    @Test func escapedCanonicalJSONIsStillJSONForTheSameValue() throws {
        let value: JSONValue = ["to": "acct\u{202E}1", "memo": "a\u{200B}b\u{2028}c\u{FEFF}", "n": 1]
        let escaped = value.canonicalJSON.escapingInvisibles()
        #expect(!escaped.unicodeScalars.contains(where: String.isInvisible))
        #expect(try JSONValue(parsing: escaped) == value)
    }

    @Test func everyScalarThatIsEscapedIsOneThatCannotBeSeen() {
        // A sweep of the Basic Multilingual Plane: letters, digits, punctuation and symbols are never escaped.
        for value in UInt32(0x20)...0xFFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .decimalNumber, .otherPunctuation, .mathSymbol, .currencySymbol, .otherSymbol:
                #expect(!String.isInvisible(scalar), "U+\(String(value, radix: 16))")
            default:
                break
            }
        }
    }
}
