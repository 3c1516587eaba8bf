import Foundation
import Testing

@testable import TollgateCore

/// The "billion laughs" in YAML: each level is a list of ten aliases to the level below, 10^levels values.
func billionLaughs(levels: Int) -> String {
    var lines = ["version: '1'", "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in 1...levels {
        let alias = "*l\(level - 1)"
        lines.append("l\(level): &l\(level) [" + Array(repeating: alias, count: 10).joined(separator: ", ") + "]")
    }
    return lines.joined(separator: "\n")
}

@Suite("Policy validation")
struct PolicyValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var code: SourceDiagnostic.Code
        var text: String
        var path: String
        var location: SourcePosition?
        var message: String
        var suggestion: String? = nil
        var file = "p.yaml"
        var testDescription: String { "\(code.rawValue) at \(path)" }
    }

    /// One policy per error code, with the diagnostic it must give.
    static let cases: [Case] = [
        Case(
            code: .fileTooLarge, text: "version: '1'\n" + String(repeating: "#", count: 1 << 20), path: "", location: nil,
            message: "the file is 1048589 bytes; policies are limited to 1048576 bytes"),
        Case(code: .syntax, text: "version: '1'\ntools: [", path: "", location: SourcePosition(line: 3, column: 1), message: ""),
        Case(
            code: .tooDeep, text: "version: '1'\ndescription: " + String(repeating: "[", count: 70) + String(repeating: "]", count: 70),
            path: "", location: SourcePosition(line: 2, column: 77), message: "lists and mappings are nested more than 64 deep"),
        Case(
            code: .tooManyNodes, text: billionLaughs(levels: 9), path: "", location: nil,
            message: "the document has more than 100000 values once aliases are expanded"),
        Case(
            code: .duplicateKey, text: "version: '1'\ndefault: deny\ndefault: allow", path: "default", location: SourcePosition(line: 3, column: 1),
            message: "the key `default` appears twice; only the first counts"),
        Case(
            code: .unknownKey, text: "version: '1'\ntools:\n  transfer:\n    limts: []", path: "tools.transfer.limts",
            location: SourcePosition(line: 4, column: 5), message: "unknown key `limts`", suggestion: "limits"),
        Case(
            code: .wrongType, text: "version: '1'\nhide: delete_repo", path: "hide", location: SourcePosition(line: 2, column: 7),
            message: "expected a list, found a string"),
        Case(
            code: .missingField, text: "version: '1'\nlimits: [{counter: c, max: 1}]", path: "limits[0].window",
            location: SourcePosition(line: 2, column: 10), message: "the required field `window` is missing"),
        Case(
            code: .invalidValue, text: "version: '1'\nlimits: [{counter: c, window: minute, max: 1, scope: grnat}]", path: "limits[0].scope",
            location: SourcePosition(line: 2, column: 54), message: "`grnat` is not allowed here", suggestion: "grant"),
        Case(
            code: .invalidVersion, text: "version: '2'", path: "version", location: SourcePosition(line: 1, column: 10),
            message: "the version must be \"1\", found `2`"),
        Case(
            code: .invalidNumber, text: "version: '1'\nlimits: [{counter: c, window: minute, max: 0}]", path: "limits[0].max",
            location: SourcePosition(line: 2, column: 44), message: "`max` must be a positive number, found 0"),
        Case(
            code: .invalidDuration, text: "version: '1'\nlimits: [{counter: c, window: minuet, max: 1}]", path: "limits[0].window",
            location: SourcePosition(line: 2, column: 31), message: "`minuet` is not a duration", suggestion: "minute"),
        Case(
            code: .invalidName, text: "version: '1'\nlimits: [{counter: 'a b', window: minute, max: 1}]", path: "limits[0].counter",
            location: SourcePosition(line: 2, column: 20), message: "`a b` is not a counter name"),
        Case(
            code: .invalidPattern, text: "version: '1'\ntools:\n  'bad name': allow", path: #"tools["bad name"]"#,
            location: SourcePosition(line: 3, column: 3), message: "`bad name` is not a tool name or pattern"),
        Case(
            code: .invalidPath, text: "version: '1'\ntools: {t: {rules: [{when: [{path: arg.x, op: eq, value: 1}], action: deny}]}}",
            path: "tools.t.rules[0].when[0].path", location: SourcePosition(line: 2, column: 36),
            message: "`arg.x` is not a value a condition can read", suggestion: "args.x"),
        Case(
            code: .invalidOperand, text: "version: '1'\ntools: {t: {rules: [{when: [{path: args.x, op: in, value: 1}], action: deny}]}}",
            path: "tools.t.rules[0].when[0].value", location: SourcePosition(line: 2, column: 59),
            message: "`in` cannot compare with a number (1)"),
        Case(
            code: .invalidRegex, text: "version: '1'\ntools: {t: {rules: [{when: [{path: args.x, op: regex, value: '(a'}], action: deny}]}}",
            path: "tools.t.rules[0].when[0].value", location: SourcePosition(line: 2, column: 62),
            message: "the regular expression `(a` is invalid: missing `)`"),
        Case(
            code: .regexTooComplex,
            text: "version: '1'\ntools: {t: {rules: [{when: [{path: args.x, op: regex, value: '(?:a{1000}){3}'}], action: deny}]}}",
            path: "tools.t.rules[0].when[0].value", location: SourcePosition(line: 2, column: 62),
            message: "the regular expression is too large: the pattern compiles to more than 2000 states"),
        Case(
            code: .duplicateEntry, text: "version: '1'\nhide: [a, a]", path: "hide[1]", location: SourcePosition(line: 2, column: 11),
            message: "`a` is already listed at hide[0]"),
        Case(
            code: .counterConflict, text: "version: '1'\nlimits: [{counter: c, window: minute, max: 1}, {counter: c, window: hour, max: 1}]",
            path: "limits[1].counter", location: SourcePosition(line: 2, column: 58),
            message: "the counter `c` is also defined at limits[0] with a different window hour vs minute"),
        Case(
            code: .misplacedField, text: "version: '1'\ntools: {t: {action: deny, approval: {quorum: 1}}}", path: "tools.t.approval",
            location: SourcePosition(line: 2, column: 27), message: "`approval` options only apply when `action` is `require_approval`"),
        Case(
            code: .emptyRule, text: "version: '1'\ntools: {t: {rules: [{name: nothing}]}}", path: "tools.t.rules[0]",
            location: SourcePosition(line: 2, column: 21), message: "the rule has neither an `action` nor `limits`, so it would change nothing"),
        Case(
            code: .invalidQuorum, text: "version: '1'\ntools: {t: {action: require_approval, approval: {quorum: 3, reviewers: [a, b]}}}",
            path: "tools.t.approval.quorum", location: SourcePosition(line: 2, column: 58),
            message: "a quorum of 3 can never be reached by 2 reviewer(s)"),
        Case(
            code: .holdExceedsTimeout, text: "version: '1'\ntools: {t: {action: require_approval, approval: {timeout: 1m, hold: 2m}}}",
            path: "tools.t.approval.hold", location: SourcePosition(line: 2, column: 69),
            message: "the call would be held (2m) past the request's expiry (1m)"),
    ]

    @Test(arguments: cases)
    func eachErrorNamesFileLocationPathAndFix(_ expected: Case) {
        let found = diagnostics(expected.text, file: expected.file)
        let diagnostic = found.first { $0.code == expected.code }
        #expect(diagnostic != nil, "got \(found)")
        guard let diagnostic else { return }
        #expect(diagnostic.file == expected.file)
        #expect(diagnostic.path == expected.path)
        if let location = expected.location { #expect(diagnostic.location == location) }
        if !expected.message.isEmpty { #expect(diagnostic.message == expected.message) }
        #expect(diagnostic.suggestion == expected.suggestion)
        #expect(diagnostic.description.hasPrefix(expected.file))
        #expect(diagnostic.description.contains("[\(expected.code.rawValue)]"))
    }

    @Test func everyErrorCodeHasACase() {
        let covered = Set(Self.cases.map(\.code)).union([.unsupportedImport])  // import errors are tested with the importer
        #expect(Set(SourceDiagnostic.Code.allCases).subtracting(covered).isEmpty)
    }

    @Test func everyErrorCodeIsInTheDocumentation() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/policy.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for code in SourceDiagnostic.Code.allCases {
            #expect(text.contains("| `\(code.rawValue)` |"), "docs/policy.md has no table row for \(code.rawValue)")
        }
    }

    @Test func everyErrorIsReportedNotJustTheFirst() {
        let found = diagnostics(
            """
            version: 2
            default: maybe
            hide: [a, a]
            tools:
              transfer:
                limts: []
                limits:
                  - {counter: c, window: fortnight, max: -1, scope: grnat}
            """)
        #expect(
            found.map(\.code) == [.invalidVersion, .invalidValue, .duplicateEntry, .unknownKey, .invalidDuration, .invalidNumber, .invalidValue])
        #expect(found.map { $0.location?.line ?? 0 } == [1, 2, 3, 6, 8, 8, 8])
    }

    @Test func jsonErrorsHaveLocationsToo() {
        let found = diagnostics("{\n  \"version\": \"1\",\n  \"tools\": {\"t\": {\"actoin\": \"deny\"}}\n}", file: "p.json")
        #expect(found.map(\.code) == [.unknownKey])
        #expect(found.first?.location == SourcePosition(line: 3, column: 19))
        #expect(found.first?.path == "tools.t.actoin")
        #expect(found.first?.suggestion == "action")
    }

    @Test func unknownCategoryIsAnInvalidValueWithSuggestion() {
        let found = diagnostics("version: '1'\ncategories: {finacial: deny}")
        #expect(found.first?.code == .invalidValue)
        #expect(found.first?.suggestion == "financial")
    }

    @Test func unknownActionSuggestsTheNearestOne() {
        let found = diagnostics("version: '1'\ntools: {t: {action: require-approval}}")
        #expect(found.first?.code == .invalidValue)
        #expect(found.first?.suggestion == "require_approval")
    }

    @Test(arguments: [
        ("lt", "'5'"), ("gte", "[1]"), ("exists", "yes"), ("regex", "5"), ("not_in", "x"), ("eq", ".nan"),
    ])
    func operatorsCheckTheirOperand(op: String, value: String) {
        let found = diagnostics("version: '1'\ntools: {t: {rules: [{when: [{path: args.x, op: \(op), value: \(value)}], action: deny}]}}")
        #expect(found.map(\.code) == [.invalidOperand])
    }

    @Test(arguments: ["(?=a)", "\\1", "a**", "[z-a]", "(?i)a", "a{3,1}", "\\bword"])
    func unsupportedOrInvalidRegexesAreRejected(pattern: String) {
        let found = diagnostics("version: '1'\ntools: {t: {rules: [{when: [{path: args.x, op: regex, value: '\(pattern)'}], action: deny}]}}")
        #expect(found.map(\.code) == [.invalidRegex])
    }

    @Test(arguments: ["args.", "args..x", "tool.x", "env.HOME", ""])
    func badValuePathsAreRejected(path: String) {
        let found = diagnostics("version: '1'\ntools: {t: {rules: [{when: [{path: '\(path)', op: exists, value: true}], action: deny}]}}")
        #expect(found.map(\.code) == [.invalidPath])
    }

    @Test(arguments: ["args", "args.a.b.0", "agent", "grant", "session", "server", "tool"])
    func goodValuePathsAreAccepted(path: String) throws {
        _ = try loadPolicy("version: '1'\ntools: {t: {rules: [{when: [{path: '\(path)', op: exists, value: true}], action: deny}]}}")
        #expect(ValuePath(path)?.description == path)
    }

    @Test func incrementFromMustNameAnArgument() {
        let found = diagnostics("version: '1'\nlimits: [{counter: c, window: day, max: 5, increment_from: agent}]")
        #expect(found.map(\.code) == [.invalidPath])
    }

    @Test func incrementAndIncrementFromAreExclusive() {
        let found = diagnostics("version: '1'\nlimits: [{counter: c, window: day, max: 5, increment: 2, increment_from: args.x}]")
        #expect(found.map(\.code) == [.misplacedField])
    }

    @Test func theSameCounterWithTheSameSettingsIsFine() throws {
        _ = try loadPolicy(
            "version: '1'\nlimits: [{counter: c, window: minute, max: 1, scope: grant}]\ntools: {t: {limits: [{counter: c, window: 60, max: 9, scope: grant}]}}"
        )
    }

    @Test func suggestionsNeedToBeClose() {
        #expect(EditDistance.suggestion(for: "limts", among: ["limits", "rules"]) == "limits")
        #expect(EditDistance.suggestion(for: "grnat", among: ["grant", "agent"]) == "grant")
        #expect(EditDistance.suggestion(for: "zzzzzz", among: ["limits", "rules"]) == nil)
        #expect(EditDistance.suggestion(for: "NOT-IN", among: ["in", "not_in"]) == "not_in")
        #expect(EditDistance.between("kitten", "sitting") == 3)
        #expect(EditDistance.between("", "abc") == 3)
    }
}
