import Foundation
import Testing

@testable import TollgateCore

@Suite("Policy parsing")
struct PolicyParsingTests {
    @Test func seedPolicyLoadsExactlyAsWritten() throws {
        let compiled = try loadPolicy(seedPolicyJSON, file: "seed.json")
        let policy = compiled.policy
        #expect(policy.version == "1")
        #expect(policy.defaultAction == .deny)
        #expect(policy.tools.count == 1)
        let entry = try #require(policy.tools["BinancePortfolioMarginRenewListenKey"])
        #expect(entry.action == nil)
        #expect(entry.rules.isEmpty)
        #expect(
            entry.limits == [
                PolicyLimit(counter: "binanceportfoliomarginrenewlistenkey_rate", window: 60, max: 60, scope: .grant, algorithm: .fixed)
            ])
    }

    @Test func seedPolicyMeansDefaultDenyAndSixtyPerMinutePerGrant() throws {
        let policy = try loadPolicy(seedPolicyJSON, file: "seed.json")
        let tool = "BinancePortfolioMarginRenewListenKey"
        #expect(policy.evaluate(makeCall("SomethingElse")).outcome.isDeny)
        #expect(policy.evaluate(makeCall("SomethingElse")).rule == "default")

        let call = makeCall(tool, grant: "g1")
        let keys = policy.counterKeys(for: call)
        #expect(
            keys == [
                CounterKey(
                    server: "server-1", counter: "binanceportfoliomarginrenewlistenkey_rate", scope: "grant:g1", windowStart: 1_699_999_980,
                    windowSeconds: 60)
            ])
        let at59 = policy.evaluate(call, counts: [keys[0]: 59])
        #expect(at59.outcome.isAllow)
        #expect(at59.reservations.map(\.amount) == [1])
        #expect(at59.reservations.map(\.ceiling) == [60])
        let at60 = policy.evaluate(call, counts: [keys[0]: 60])
        #expect(at60.outcome.retryAfter == 40)
        #expect(at60.rule == "tools.BinancePortfolioMarginRenewListenKey.limits[0]")
        #expect(at60.reservations.isEmpty)
        // Another grant has its own counter.
        let otherGrant = makeCall(tool, grant: "g2")
        #expect(policy.counterKeys(for: otherGrant)[0].scope == "grant:g2")
        #expect(policy.evaluate(otherGrant, counts: [keys[0]: 60]).outcome.isAllow)
    }

    @Test func yamlAndJSONOfTheSamePolicyAreEqualAndHashEqual() throws {
        let yaml = """
            # comments do not matter
            version: "1"
            default: deny
            tools:
              BinancePortfolioMarginRenewListenKey:
                limits:
                  - counter: binanceportfoliomarginrenewlistenkey_rate
                    window: 1m
                    max: 60
                    scope: grant
            """
        let fromYAML = try loadPolicy(yaml)
        let fromJSON = try loadPolicy(seedPolicyJSON, file: "seed.json")
        #expect(fromYAML.policy == fromJSON.policy)
        #expect(fromYAML.contentHash == fromJSON.contentHash)
        #expect(fromYAML.contentHash.hasPrefix("sha256:"))
        #expect(fromYAML.contentHash.count == 7 + 64)
    }

    @Test func everyFieldIsRead() throws {
        let policy = try loadPolicy(
            """
            version: 1
            description: payments server
            default: allow
            hide: [admin_*, drop_table]
            limits:
              - {counter: all_calls, window: second, max: 10, scope: global}
            categories:
              financial:
                action: require_approval
                reason: money moves
                approval: {timeout: 2h, hold: 30s, quorum: 2, reviewers: [alice, bob]}
              destructive: deny
              read: allow
            tools:
              transfer:
                action: require_approval
                limits:
                  - {counter: spend, window: day, max: 10000, scope: agent, increment_from: args.amount, algorithm: sliding}
                  - {counter: weighted, window: 90s, max: 100, scope: session, increment: 5}
                rules:
                  - name: small transfers
                    when:
                      - {path: args.amount, op: lte, value: 100}
                    unless:
                      - {path: args.currency, op: eq, value: btc}
                    action: allow
                  - name: blocked account
                    when: [{path: args.to, op: in, value: [acct-666]}]
                    action: deny
                    reason: that account is blocked
              "Binance*": {action: deny}
              noop: {}
              read_file: allow
            """)
        let model = policy.policy
        #expect(model.version == "1")
        #expect(model.description == "payments server")
        #expect(model.defaultAction == .allow)
        #expect(model.hide == ["admin_*", "drop_table"])
        #expect(model.limits == [PolicyLimit(counter: "all_calls", window: 1, max: 10, scope: .global)])
        #expect(
            model.categories[.financial]
                == ToolPolicy(
                    action: .requireApproval,
                    reason: "money moves",
                    approval: ApprovalOptions(timeout: 7200, hold: 30, quorum: 2, reviewers: ["alice", "bob"])
                ))
        #expect(model.categories[.destructive] == ToolPolicy(action: .deny))
        #expect(model.categories[.read] == ToolPolicy(action: .allow))
        let transfer = try #require(model.tools["transfer"])
        #expect(transfer.action == .requireApproval)
        #expect(
            transfer.limits == [
                PolicyLimit(
                    counter: "spend", window: 86400, max: 10000, scope: .agent, algorithm: .sliding,
                    incrementFrom: ValuePath(root: .args, components: ["amount"])),
                PolicyLimit(counter: "weighted", window: 90, max: 100, scope: .session, increment: 5),
            ])
        #expect(
            transfer.rules == [
                PolicyRule(
                    name: "small transfers",
                    when: [PolicyCondition(path: ValuePath(root: .args, components: ["amount"]), op: .lte, value: .number(100))],
                    unless: [PolicyCondition(path: ValuePath(root: .args, components: ["currency"]), op: .eq, value: .string("btc"))],
                    action: .allow
                ),
                PolicyRule(
                    name: "blocked account",
                    when: [PolicyCondition(path: ValuePath(root: .args, components: ["to"]), op: .in, value: .array([.string("acct-666")]))],
                    action: .deny,
                    reason: "that account is blocked"
                ),
            ])
        #expect(model.tools["Binance*"] == ToolPolicy(action: .deny))
        #expect(model.tools["noop"] == ToolPolicy())
        #expect(model.tools["read_file"] == ToolPolicy(action: .allow))
    }

    @Test(arguments: [
        ("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400),
    ])
    func windowsAcceptNamesAndDurations(text: String, seconds: Int) throws {
        let policy = try loadPolicy("version: '1'\nlimits: [{counter: c, window: \(text), max: 1}]")
        #expect(policy.policy.limits[0].window == seconds)
    }

    @Test func windowAsNumberIsSeconds() throws {
        let policy = try loadPolicy(#"{"version": "1", "limits": [{"counter": "c", "window": 120, "max": 1}]}"#, file: "p.json")
        #expect(policy.policy.limits[0].window == 120)
    }

    @Test func omittedFieldsTakeDocumentedDefaults() throws {
        let policy = try loadPolicy("version: '1'\nlimits: [{counter: c, window: minute, max: 5}]\ntools: {t: {action: require_approval}}")
        #expect(policy.policy.defaultAction == .deny)
        #expect(policy.policy.limits[0].scope == .global)
        #expect(policy.policy.limits[0].algorithm == .fixed)
        #expect(policy.policy.limits[0].increment == 1)
        let approval = try #require(policy.evaluate(makeCall("t")).outcome.approval)
        #expect(approval == ApprovalRequirement(timeout: 3600, hold: 45, quorum: 1, reviewers: [], reason: nil))
    }

    @Test func yamlScalarsResolveTheYAML12Way() throws {
        let policy = try loadPolicy(
            """
            version: '1'
            tools:
              t:
                rules:
                  - when:
                      - {path: args.a, op: eq, value: yes}
                      - {path: args.b, op: eq, value: "42"}
                      - {path: args.c, op: eq, value: 42}
                      - {path: args.d, op: eq, value: ~}
                      - {path: args.e, op: eq, value: false}
                      - {path: args.f, op: eq, value: 1.5e3}
                    action: deny
            """)
        let values = policy.policy.tools["t"]!.rules[0].when.map(\.value)
        #expect(values == [.string("yes"), .string("42"), .number(42), .null, .bool(false), .number(1500)])
    }

    @Test func yamlMergeKeysAreSupported() throws {
        let policy = try loadPolicy(
            """
            version: '1'
            tools:
              a: &base
                action: deny
                reason: shared
              b:
                <<: *base
                reason: own
            """)
        #expect(policy.policy.tools["b"] == ToolPolicy(action: .deny, reason: "own"))
        #expect(policy.policy.tools["a"] == ToolPolicy(action: .deny, reason: "shared"))
    }

    @Test func formatIsDetectedFromNameThenContent() {
        #expect(SourceFormat.detect(fileName: "p.json", text: "version: 1") == .json)
        #expect(SourceFormat.detect(fileName: "p.yml", text: "{}") == .yaml)
        #expect(SourceFormat.detect(fileName: "p", text: "  {\"a\": 1}") == .json)
        #expect(SourceFormat.detect(fileName: "p", text: "a: 1") == .yaml)
    }

    @Test func policyFromDataMustBeUTF8() {
        do {
            _ = try PolicyLoader.load(Data([0xFF, 0xFE, 0x00]), fileName: "x.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.map(\.code) == [.syntax])
        }
    }

    @Test func jsonSyntaxErrorsCarryLineAndColumn() {
        let found = diagnostics("{\n  \"version\": \"1\",\n  \"tools\": {,}\n}", file: "p.json")
        #expect(found.count == 1)
        #expect(found.first?.code == .syntax)
        #expect(found.first?.location == SourcePosition(line: 3, column: 13))
    }

    @Test func yamlSyntaxErrorsCarryLineAndColumn() {
        let found = diagnostics("version: '1'\ntools:\n  t: [unclosed\n")
        #expect(found.first?.code == .syntax)
        #expect(found.first?.location?.line == 4)
    }

    @Test(arguments: [
        #"{"a": 1,}"#, #"{"a" 1}"#, #"[1 2]"#, #"{"a": 01}"#, #"{"a": "\x"}"#, #"{"a": tru}"#, #"{"a": 1} x"#, "{\"a\": \"\u{01}\"}",
        #"{"a": "\uD800"}"#, #"{"a": -}"#, #"{"a": 1.}"#, #"{"a": 1e}"#, "",
    ])
    func malformedJSONIsASyntaxError(text: String) {
        #expect(diagnostics(text, file: "p.json").map(\.code) == [.syntax])
    }

    @Test func jsonStringEscapesAreDecoded() throws {
        let value = json(#"{"s": "a\"b\\c\/d\n\u00e9\ud83d\ude00"}"#)
        #expect(value["s"] == .string("a\"b\\c/d\né😀"))
    }
}
