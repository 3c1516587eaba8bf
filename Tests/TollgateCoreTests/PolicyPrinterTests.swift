import Foundation
import Testing

@testable import TollgateCore

@Suite("Policy canonical form and hash")
struct PolicyPrinterTests {
    @Test func seedPolicyPrintsCanonicalYAML() throws {
        let policy = try loadPolicy(seedPolicyJSON, file: "seed.json").policy
        #expect(
            policy.canonicalYAML == """
                version: "1"
                default: deny
                tools:
                  BinancePortfolioMarginRenewListenKey:
                    limits:
                      - {counter: binanceportfoliomarginrenewlistenkey_rate, window: minute, max: 60, scope: grant}

                """)
    }

    @Test func canonicalJSONIsIndentedWithFlowLimits() throws {
        let policy = try loadPolicy(seedPolicyJSON, file: "seed.json").policy
        #expect(
            policy.canonicalJSON == """
                {
                  "version": "1",
                  "default": "deny",
                  "tools": {
                    "BinancePortfolioMarginRenewListenKey": {
                      "limits": [
                        {"counter": "binanceportfoliomarginrenewlistenkey_rate", "window": "minute", "max": 60, "scope": "grant"}
                      ]
                    }
                  }
                }

                """)
    }

    static let rich = """
        version: '1'
        description: "Line one\\nline \\"two\\" — ünïcode"
        default: allow
        hide: [admin_*, "yes", "123", "*"]
        limits: [{counter: all, window: 1s, max: 100.5, scope: global, algorithm: sliding}]
        categories:
          read: allow
          financial: {action: require_approval, approval: {timeout: 2h, hold: 1m, quorum: 2, reviewers: [alice, "bob smith"]}}
        tools:
          zeta: deny
          "Binance*": {action: deny, reason: "no: not here"}
          transfer:
            limits: [{counter: spend, window: 1d, max: 1e18, scope: agent, increment_from: args.amount}]
            rules:
              - name: big
                when:
                  - {path: args.amount, op: gt, value: 1000}
                  - {path: args.meta, op: eq, value: {b: [1, true, null], a: "x"}}
                unless: [{path: agent, op: in, value: [ops, "null"]}]
                action: require_approval
                approval: {timeout: 90s, hold: 30s, quorum: 1}
              - {when: [{path: args.memo, op: regex, value: "^[A-Z]{3}-\\\\d+$"}], limits: [{counter: memo, window: 15m, max: 3, scope: session, increment: 2}]}
          empty: {}
        """

    @Test func formatThenParseGivesTheSamePolicy() throws {
        let original = try loadPolicy(Self.rich).policy
        let fromYAML = try PolicyLoader.parse(original.canonicalYAML, fileName: "fmt.yaml")
        let fromJSON = try PolicyLoader.parse(original.canonicalJSON, fileName: "fmt.json")
        #expect(fromYAML == original)
        #expect(fromJSON == original)
        // And the canonical form is a fixed point.
        #expect(fromYAML.canonicalYAML == original.canonicalYAML)
    }

    @Test func hashIgnoresLayoutButNotMeaning() throws {
        let original = try loadPolicy(Self.rich)
        let reformatted = try loadPolicy(original.policy.canonicalJSON, file: "p.json")
        #expect(reformatted.contentHash == original.contentHash)
        var changed = original.policy
        changed.tools["transfer"]?.rules[0].approval?.quorum = 2
        #expect(changed.contentHash != original.contentHash)
        var reordered = original.policy
        reordered.tools["transfer"]?.rules.reverse()
        #expect(reordered.contentHash != original.contentHash)
    }

    @Test func stringsThatLookLikeOtherTypesAreQuoted() {
        #expect(PolicyPrinter.yamlString("yes") == "\"yes\"")
        #expect(PolicyPrinter.yamlString("123") == "\"123\"")
        #expect(PolicyPrinter.yamlString("1e3") == "\"1e3\"")
        #expect(PolicyPrinter.yamlString("null") == "\"null\"")
        #expect(PolicyPrinter.yamlString("a: b") == "\"a: b\"")
        #expect(PolicyPrinter.yamlString("*") == "\"*\"")
        #expect(PolicyPrinter.yamlString("") == "\"\"")
        #expect(PolicyPrinter.yamlString("read_file") == "read_file")
        #expect(PolicyPrinter.yamlString("args.amount") == "args.amount")
    }

    @Test(arguments: [(60.0, "60"), (0.5, "0.5"), (-3, "-3"), (1e20, "1.0e+20"), (1.5e-7, "1.5e-07"), (123456789012345, "123456789012345")])
    func numbersPrintInTheirShortestForm(value: Double, text: String) {
        #expect(CanonicalNumber.format(value) == text)
        #expect(CanonicalNumber.parseDecimal(text) == value)
    }

    @Test func canonicalJSONOfValuesSortsKeys() {
        let value = JSONValue.object(["b": .number(1), "a": .array([.string("x\n\u{1}"), .null, .bool(true)])])
        #expect(value.canonicalJSON == #"{"a":["x\n\u0001",null,true],"b":1}"#)
    }
}
