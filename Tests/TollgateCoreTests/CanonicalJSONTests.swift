import Foundation
import Testing

@testable import TollgateCore

/// The byte-level canonicalizer gives exactly ``JSONValue/canonicalJSON``, and refuses what is not JSON.
@Suite struct CanonicalJSONTests {
    static let samples: [String] = [
        #"{"tool":"transfer","arguments":{"amount":1200,"to":"acct_1"},"agent":"a","reservations":[]}"#,
        #"  { "b" : 1.0 , "a" : [ true , false , null ] , "é" : "\u00e9\n\t\"\\\/" }  "#,
        #"[1, -0, 0.5, 1e3, -2.5E-3, 12345678901234567890, 1e400, 100000000000000, 1000000000000000]"#,
        #"{"z":{"y":{"x":[{"w":"\ud83d\ude00"}]}},"":"empty key","A":"upper before lower"}"#,
        #""\u0001\u001f\u007f\u0085\u2028 plain ünïcödé ✓""#,
        #"{"callID":"5B0C7C1E-0000-4000-8000-000000000000","decidedAt":"2026-12-02T08:00:00.000Z","decisionMicros":41}"#,
        "0", "-1", "true", "\"\"", "[]", "{}",
    ]

    @Test(arguments: samples)
    func theSameTextAsTheValuesCanonicalForm(_ sample: String) throws {
        let expected = try JSONValue(parsing: sample).canonicalJSON
        let bytes = try CanonicalJSON.canonicalize(Array(sample.utf8))
        #expect(String(decoding: bytes, as: UTF8.self) == expected)
        // Canonical text is a fixed point.
        #expect(try CanonicalJSON.canonicalize(bytes) == bytes)
    }

    static let refused: [String] = [
        "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-", "1e", "tru", "nul", "\"open", "\"\\x\"", "\"\\u12\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"tab\there\"", "[1] 2", "{\"a\":1,\"a\":2}", "\u{FEFF}{}", "NaN", "[.5]",
    ]

    @Test(arguments: refused)
    func notJSONIsRefused(_ sample: String) {
        #expect(throws: CanonicalJSON.Failure.self) { try CanonicalJSON.canonicalize(Array(sample.utf8)) }
    }

    @Test func invalidUTF8AndDeepNestingAreRefused() {
        #expect(throws: CanonicalJSON.Failure.self) { try CanonicalJSON.canonicalize([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: CanonicalJSON.Failure.self) { try CanonicalJSON.canonicalize([0x22, 0xED, 0xA0, 0x80, 0x22]) }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: CanonicalJSON.Failure.self) { try CanonicalJSON.canonicalize(Array(deep.utf8)) }
        #expect((try? CanonicalJSON.canonicalize(Array(deep.utf8), maxDepth: 700)) != nil)
    }
}
