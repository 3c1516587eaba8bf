import Foundation
import Testing

@testable import TollgateCore

@Suite("Policy regular expressions")
struct PolicyRegexTests {
    @Test(arguments: [
        ("abc", "xxabcxx", true), ("^abc", "xabc", false), ("abc$", "abcx", false), ("^abc$", "abc", true),
        ("a.c", "abc", true), ("a.c", "a\nc", false), ("colou?r", "color", true), ("colou?r", "colour", true),
        ("ab*c", "ac", true), ("ab+c", "ac", false), ("ab+c", "abbbc", true), ("^(ab|cd)+$", "abcdab", true),
        ("^(ab|cd)+$", "abca", false), ("^(?:x|y){2}$", "xy", true), ("^(?:x|y){2}$", "xyx", false),
        ("^a{2,}$", "a", false), ("^a{2,}$", "aaaa", true), ("^a{1,2}$", "aaa", false), ("[0-9]+", "ab12", true),
        ("^[^0-9]+$", "ab1", false), ("^\\d{3}-\\d{4}$", "555-1234", true), ("^\\w+$", "snake_case1", true),
        ("^\\w+$", "kebab-case", false), ("\\s", "a b", true), ("^\\S+$", "a b", false), ("^\\D+$", "abc", true),
        ("\\.", "a.b", true), ("\\.", "ab", false), ("^[a\\-z]+$", "a-z", true), ("^[.]$", ".", true),
        ("^é+$", "éé", true), ("^.$", "😀", true), ("^[😀-😂]$", "😁", true), ("a{,2}", "a{,2}", true),
        ("^$", "", true), ("", "anything", true), ("a|", "b", true), ("(a*)*b", "aaab", true), ("^a*?$", "aaa", true),
        ("[]a]", "]", true), ("^a{2}{$", "aa{", true), ("^[\\d\\s]+$", "1 2", true), ("x{2}", "x{2}", false),
    ])
    func matchesLikeRE2(pattern: String, subject: String, expected: Bool) throws {
        let regex = try PolicyRegex(pattern)
        #expect(regex.matches(subject) == expected)
    }

    @Test(arguments: ["(a+)+$", "(a|a)*$", "(a|aa)+$", "^(a*)*$", "(.*a){20}$", ".*.*.*.*.*=.*"])
    func catastrophicPatternsRunInLinearTime(pattern: String) throws {
        let regex = try PolicyRegex(pattern)
        let subject = String(repeating: "a", count: 20_000) + "!"
        let clock = ContinuousClock()
        let elapsed = clock.measure { _ = regex.matches(subject) }
        #expect(elapsed < .seconds(2), "\(pattern) took \(elapsed)")
    }

    @Test(arguments: ["(", ")", "[abc", "a)", "*a", "\\", "(?<name>a)", "(?!a)", "\\k", "a++"])
    func invalidPatternsAreSyntaxErrors(pattern: String) {
        #expect(throws: PolicyRegex.CompileError.self) { try PolicyRegex(pattern) }
    }

    @Test func largePatternsAreRejected() {
        #expect(throws: PolicyRegex.CompileError.self) { try PolicyRegex(String(repeating: "a", count: 1001)) }
        #expect(throws: PolicyRegex.CompileError.self) { try PolicyRegex("(a{1000}){3}") }
        #expect(throws: PolicyRegex.CompileError.self) { try PolicyRegex(String(repeating: "(", count: 200) + String(repeating: ")", count: 200)) }
    }

    @Test func matchingBeyondTheStepBudgetGivesNoAnswer() throws {
        let regex = try PolicyRegex("a{500}")
        #expect(regex.matches(String(repeating: "b", count: 100_000)) == nil)
        #expect(regex.matches(String(repeating: "a", count: 600)) == true)
    }
}
