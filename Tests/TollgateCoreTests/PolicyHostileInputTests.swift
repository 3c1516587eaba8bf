import Foundation
import Testing

@testable import TollgateCore

@Suite("Policy hostile input")
struct PolicyHostileInputTests {
    @Test(arguments: [10, 1000, 100_000])
    func deeplyNestedJSONIsAnError(depth: Int) {
        let text = "{\"version\": \"1\", \"description\": " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        let found = diagnostics(text, file: "p.json")
        #expect(found.first?.code == (depth > 64 ? .tooDeep : .wrongType))
    }

    @Test(arguments: [1000, 100_000])
    func deeplyNestedYAMLFlowIsAnError(depth: Int) {
        let text = "version: '1'\ndescription: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(diagnostics(text).map(\.code) == [.tooDeep])
    }

    @Test func deeplyNestedYAMLBlocksAreAnError() {
        let dashes = "version: '1'\ndescription:\n" + String(repeating: "- ", count: 100_000) + "x\n"
        #expect(diagnostics(dashes).map(\.code) == [.tooDeep])
        var indented = "version: '1'\nx:\n"
        for level in 0..<1000 { indented += String(repeating: " ", count: level + 1) + "k:\n" }
        #expect(diagnostics(indented).map(\.code) == [.tooDeep])
    }

    @Test func aModeratelyNestedPolicyIsFine() throws {
        _ = try loadPolicy(
            "version: '1'\ntools: {t: {rules: [{when: [{path: args.x, op: eq, value: [[[[[[[[[[1]]]]]]]]]]}], action: deny}]}}")
    }

    @Test func billionLaughsIsRefusedQuickly() {
        let clock = ContinuousClock()
        var found: [SourceDiagnostic] = []
        let elapsed = clock.measure { found = diagnostics(billionLaughs(levels: 9)) }
        #expect(found.map(\.code) == [.tooManyNodes])
        #expect(elapsed < .seconds(5))
    }

    @Test func aFewAliasesAreFine() throws {
        let policy = try loadPolicy(
            """
            version: '1'
            limits:
              - &perMinute {counter: c, window: minute, max: 5, scope: grant}
            tools:
              a: {limits: [*perMinute]}
              b: {limits: [*perMinute]}
            """)
        #expect(policy.policy.tools["a"]?.limits == policy.policy.limits)
    }

    @Test func hugeFilesAreRefusedBeforeParsing() {
        let text = "version: '1'\ndescription: '" + String(repeating: "x", count: 2 << 20) + "'"
        #expect(diagnostics(text).map(\.code) == [.fileTooLarge])
        #expect(throws: SourceValidationError.self) { try PolicyLoader.load(Data(text.utf8), fileName: "p.yaml") }
    }

    @Test func customLimitsApply() {
        do {
            _ = try PolicyLoader.load("version: '1'\nhide: [[[a]]]", fileName: "p.yaml", limits: SourceLimits(maxDepth: 2))
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.map(\.code) == [.tooDeep])
        }
    }

    @Test func hugeNumbersInThePolicyAreRejectedOrKept() throws {
        #expect(diagnostics("version: '1'\nlimits: [{counter: c, window: minute, max: 1e999}]").map(\.code) == [.invalidNumber])
        #expect(diagnostics("version: '1'\nlimits: [{counter: c, window: 99999999999d, max: 1}]").map(\.code) == [.invalidDuration])
        #expect(diagnostics("version: '1'\nlimits: [{counter: c, window: 1e300, max: 1}]").map(\.code) == [.invalidDuration])
        let policy = try loadPolicy("version: '1'\nlimits: [{counter: c, window: minute, max: 1e300}]")
        #expect(policy.policy.limits[0].max == 1e300)
    }

    @Test func nonMappingDocumentsAreWrongType() {
        #expect(diagnostics("[1, 2]").map(\.code) == [.wrongType])
        #expect(diagnostics("just a string").map(\.code) == [.wrongType])
        #expect(diagnostics("").map(\.code) == [.wrongType])
        #expect(diagnostics("---\na: 1\n---\nb: 2").map(\.code) == [.syntax])
    }

    @Test func complexYAMLKeysAreRejected() {
        #expect(diagnostics("version: '1'\n? [a, b]\n: c").map(\.code) == [.wrongType])
    }
}
