import Foundation
import Testing

@testable import TollgateCore

@Suite("Policy evaluation: selection and precedence")
struct PolicyPrecedenceTests {
    let patterns = """
        version: '1'
        default: deny
        tools:
          Binance*: {action: deny, reason: by Binance*}
          BinanceSpot*: {action: deny, reason: by BinanceSpot*}
          BinanceSpotOrder: allow
          "*_delete": {action: deny, reason: by *_delete}
          "*": {action: deny, reason: by *}
          "Bin?nce*": {action: deny, reason: by Bin?nce*}
          a*b: {action: deny, reason: by a*b}
          "*ab": {action: deny, reason: by *ab}
        """

    @Test func exactKeyBeatsEveryPattern() throws {
        let policy = try loadPolicy(patterns)
        let decision = policy.evaluate(makeCall("BinanceSpotOrder"))
        #expect(decision.outcome.isAllow)
        #expect(decision.rule == "tools.BinanceSpotOrder")
    }

    @Test(arguments: [
        ("BinanceSpotCancel", "by BinanceSpot*"),  // 11 literals beats 7
        ("BinanceFutures", "by Binance*"),  // 7 literals beats Bin?nce* (6)
        ("BinXnceFutures", "by Bin?nce*"),
        ("user_delete", "by *_delete"),
        ("anything", "by *"),
        ("ab", "by *ab"),  // a*b and *ab both have 2 literals and 1 star: *ab sorts first ("*" < "a")
        ("axxb", "by a*b"),
    ])
    func moreSpecificPatternWins(tool: String, reason: String) throws {
        let policy = try loadPolicy(patterns)
        #expect(policy.evaluate(makeCall(tool)).outcome.denyReason == reason)
    }

    @Test func fewerStarsBreakATieInLiterals() throws {
        let policy = try loadPolicy("version: '1'\ntools:\n  'ab*': {action: deny, reason: one}\n  'a*b*': {action: deny, reason: two}")
        #expect(policy.evaluate(makeCall("abb")).outcome.denyReason == "one")
    }

    @Test func precedenceDoesNotDependOnTheOrderKeysAreWritten() throws {
        let forward = try loadPolicy("version: '1'\ntools:\n  'x*': {action: deny, reason: x}\n  'xy*': allow")
        let backward = try loadPolicy("version: '1'\ntools:\n  'xy*': allow\n  'x*': {action: deny, reason: x}")
        #expect(forward.evaluate(makeCall("xyz")).outcome.isAllow)
        #expect(backward.evaluate(makeCall("xyz")).outcome.isAllow)
        #expect(forward.contentHash == backward.contentHash)
    }

    @Test func hideBeatsEverything() throws {
        let policy = try loadPolicy(
            """
            version: '1'
            default: allow
            hide: [secret_tool, "admin_*"]
            tools:
              secret_tool: allow
              admin_panel: allow
            """)
        let hidden = policy.evaluate(makeCall("secret_tool"))
        #expect(hidden.outcome.isHidden)
        #expect(hidden.rule == "hide[0]")
        #expect(policy.evaluate(makeCall("admin_panel")).rule == "hide[1]")
        #expect(policy.isHidden("admin_x"))
        #expect(!policy.isHidden("public"))
        #expect(policy.visibleTools(names: ["a", "secret_tool", "admin_1", "b"]) == ["a", "b"])
        #expect(policy.counterKeys(for: makeCall("secret_tool")).isEmpty)
    }

    @Test func hideStarHidesEverything() throws {
        let policy = try loadPolicy("version: '1'\ndefault: allow\nhide: ['*']")
        #expect(policy.visibleTools(names: ["a", "b"]).isEmpty)
    }

    @Test func defaultAllowAndDefaultDeny() throws {
        let allow = try loadPolicy("version: '1'\ndefault: allow")
        #expect(allow.evaluate(makeCall("x")).outcome.isAllow)
        #expect(allow.evaluate(makeCall("x")).rule == "default")
        let deny = try loadPolicy("version: '1'\ndefault: deny")
        #expect(deny.evaluate(makeCall("x")).outcome.denyReason == "the policy does not allow this tool (default: deny)")
    }

    @Test func categoriesApplyOnlyWhenNoToolKeyMatches() throws {
        let policy = try loadPolicy(
            """
            version: '1'
            default: allow
            categories:
              destructive: {action: deny, reason: destructive tools are off}
              financial: require_approval
            tools:
              drop_table: allow
            """)
        #expect(policy.evaluate(makeCall("drop_table", category: .destructive)).outcome.isAllow)
        let other = policy.evaluate(makeCall("rm_rf", category: .destructive))
        #expect(other.outcome.denyReason == "destructive tools are off")
        #expect(other.rule == "categories.destructive")
        #expect(policy.evaluate(makeCall("pay", category: .financial)).outcome.approval != nil)
        // No entry for the category, or no category known: the default.
        #expect(policy.evaluate(makeCall("ls", category: .read)).rule == "default")
        #expect(policy.evaluate(makeCall("rm_rf", category: nil)).rule == "default")
    }

    @Test func aStarKeyShadowsCategories() throws {
        let policy = try loadPolicy("version: '1'\ncategories: {destructive: deny}\ntools: {'*': allow}")
        #expect(policy.evaluate(makeCall("rm", category: .destructive)).outcome.isAllow)
    }

    // deny > limited > require_approval > allow, whatever the order of the rules.
    let stacked = """
        version: '1'
        tools:
          t:
            action: allow
            limits: [{counter: c, window: minute, max: 1, scope: agent}]
            rules:
              - {name: asks, when: [{path: args.ask, op: eq, value: true}], action: require_approval}
              - {name: allows, when: [{path: args.allow, op: eq, value: true}], action: allow}
              - {name: denies, when: [{path: args.deny, op: eq, value: true}], action: deny, reason: no}
        """

    @Test func denyBeatsApprovalLimitsAndAllow() throws {
        let policy = try loadPolicy(stacked)
        let call = makeCall("t", args: #"{"ask": true, "allow": true, "deny": true}"#)
        let key = try #require(policy.counterKeys(for: makeCall("t")).first)
        let decision = policy.evaluate(call, counts: [key: 5])
        #expect(decision.outcome.denyReason == "no")
        #expect(decision.rule == "tools.t.rules[2]")
        #expect(policy.counterKeys(for: call).isEmpty)
    }

    @Test func limitsBeatApproval() throws {
        let policy = try loadPolicy(stacked)
        let call = makeCall("t", args: #"{"ask": true}"#)
        let keys = policy.counterKeys(for: call)
        #expect(policy.evaluate(call, counts: [keys[0]: 1]).outcome.retryAfter != nil)
        let held = policy.evaluate(call, counts: [:])
        #expect(held.outcome.approval != nil)
        #expect(held.rule == "tools.t.rules[0]")
        #expect(held.reservations.count == 1)
    }

    @Test func approvalBeatsAllow() throws {
        let policy = try loadPolicy(stacked)
        let decision = policy.evaluate(makeCall("t", args: #"{"ask": true, "allow": true}"#))
        #expect(decision.outcome.approval != nil)
        #expect(decision.rule == "tools.t.rules[0]")
    }

    @Test func firstApplicableAllowRuleIsNamed() throws {
        let policy = try loadPolicy(stacked)
        let decision = policy.evaluate(makeCall("t", args: #"{"allow": true}"#))
        #expect(decision.outcome.isAllow)
        #expect(decision.rule == "tools.t.rules[1]")
    }

    @Test func entryActionAppliesWhenNoRuleDoes() throws {
        let policy = try loadPolicy(
            """
            version: '1'
            tools:
              t:
                action: deny
                reason: only small ones
                rules:
                  - {when: [{path: args.amount, op: lt, value: 10}], action: allow}
                  - {when: [{path: args.amount, op: gt, value: 5}], limits: [{counter: c, window: minute, max: 3}]}
            """)
        #expect(policy.evaluate(makeCall("t", args: #"{"amount": 5}"#)).outcome.isAllow)
        let big = policy.evaluate(makeCall("t", args: #"{"amount": 50}"#))
        #expect(big.outcome.denyReason == "only small ones")
        #expect(big.rule == "tools.t")
        // A rule with only limits adds its limits but does not change the action.
        let seven = makeCall("t", args: #"{"amount": 7}"#)
        #expect(policy.counterKeys(for: seven).map(\.counter) == ["c"])
        #expect(policy.evaluate(seven).rule == "tools.t.rules[0]")
    }

    @Test func entryWithoutActionAllows() throws {
        let policy = try loadPolicy("version: '1'\ntools: {t: {}}")
        #expect(policy.evaluate(makeCall("t")).outcome.isAllow)
    }

    @Test func entryRequireApprovalUsesItsOptions() throws {
        let policy = try loadPolicy(
            "version: '1'\ntools: {t: {action: require_approval, reason: why, approval: {timeout: 10m, hold: 20s, quorum: 2, reviewers: [a, b, c]}}}")
        let approval = try #require(policy.evaluate(makeCall("t")).outcome.approval)
        #expect(approval == ApprovalRequirement(timeout: 600, hold: 20, quorum: 2, reviewers: ["a", "b", "c"], reason: "why"))
    }

    @Test func ruleDenyReasonDefaultsToNamingTheRule() throws {
        let policy = try loadPolicy("version: '1'\ntools: {t: {rules: [{name: nope, action: deny}]}}")
        #expect(policy.evaluate(makeCall("t")).outcome.denyReason == #"the policy denies this call (tools.t.rules[0] "nope")"#)
    }

    @Test func unlessStopsARule() throws {
        let policy = try loadPolicy(
            """
            version: '1'
            tools:
              charge:
                rules:
                  - name: currencies
                    unless: [{path: args.currency, op: in, value: [usd, eur]}]
                    action: deny
                    reason: only usd and eur
            """)
        #expect(policy.evaluate(makeCall("charge", args: #"{"currency": "usd"}"#)).outcome.isAllow)
        #expect(policy.evaluate(makeCall("charge", args: #"{"currency": "gbp"}"#)).outcome.isDeny)
        #expect(policy.evaluate(makeCall("charge", args: #"{}"#)).outcome.isDeny)
    }

    @Test func theDecisionCarriesThePolicyHash() throws {
        let policy = try loadPolicy(stacked)
        #expect(policy.evaluate(makeCall("t")).policyHash == policy.contentHash)
        #expect(policy.evaluate(makeCall("nope")).policyHash == policy.contentHash)
    }
}

@Suite("Policy evaluation: conditions")
struct PolicyConditionTests {
    func decide(_ op: String, _ value: String, args: String, path: String = "args.x") throws -> PolicyDecision.Outcome {
        let policy = try loadPolicy(
            "{\"version\": \"1\", \"default\": \"allow\", \"tools\": {\"t\": {\"rules\": [{\"when\": [{\"path\": \"\(path)\", \"op\": \"\(op)\", \"value\": \(value)}], \"action\": \"deny\", \"reason\": \"matched\"}]}}}",
            file: "p.json")
        return policy.evaluate(makeCall("t", args: args)).outcome
    }

    /// op, operand, arguments, whether the condition holds.
    static let table: [(String, String, String, Bool)] = [
        ("eq", "5", #"{"x": 5}"#, true),
        ("eq", "5", #"{"x": 5.0}"#, true),
        ("eq", "5", #"{"x": "5"}"#, false),
        ("eq", "\"main\"", #"{"x": "main"}"#, true),
        ("eq", "\"main\"", #"{"x": "Main"}"#, false),
        ("eq", "null", #"{"x": null}"#, true),
        ("eq", "[1, 2]", #"{"x": [1, 2]}"#, true),
        ("eq", "{\"a\": 1}", #"{"x": {"a": 1}}"#, true),
        ("eq", "5", #"{}"#, false),
        ("neq", "\"draft\"", #"{"x": "final"}"#, true),
        ("neq", "\"draft\"", #"{"x": "draft"}"#, false),
        ("neq", "\"draft\"", #"{}"#, false),
        ("in", "[\"usd\", \"eur\"]", #"{"x": "eur"}"#, true),
        ("in", "[\"usd\", \"eur\"]", #"{"x": "gbp"}"#, false),
        ("in", "[1, 2]", #"{"x": 2}"#, true),
        ("in", "[1, 2]", #"{}"#, false),
        ("not_in", "[\"admin\"]", #"{"x": "user"}"#, true),
        ("not_in", "[\"admin\"]", #"{"x": "admin"}"#, false),
        ("not_in", "[\"admin\"]", #"{}"#, false),
        ("lt", "100", #"{"x": 99.5}"#, true),
        ("lt", "100", #"{"x": 100}"#, false),
        ("lte", "100", #"{"x": 100}"#, true),
        ("lte", "100", #"{"x": 100.01}"#, false),
        ("gt", "1000", #"{"x": 1000.5}"#, true),
        ("gt", "1000", #"{"x": 1000}"#, false),
        ("gt", "1000", #"{"x": "2000"}"#, true),
        ("gt", "1000", #"{"x": 1e308}"#, true),
        ("gt", "1000", #"{}"#, false),
        ("gte", "1", #"{"x": 1}"#, true),
        ("gte", "1", #"{"x": 0}"#, false),
        ("gte", "-5", #"{"x": -5}"#, true),
        ("regex", "\"^feat/\"", #"{"x": "feat/login"}"#, true),
        ("regex", "\"^feat/\"", #"{"x": "fix/feat/login"}"#, false),
        ("regex", "\"feat\"", #"{"x": "fix/feat/login"}"#, true),
        ("regex", "\"^[a-z]+-[0-9]{2,3}$\"", #"{"x": "abc-123"}"#, true),
        ("regex", "\"^[a-z]+-[0-9]{2,3}$\"", #"{"x": "abc-1234"}"#, false),
        ("regex", "\"^feat/\"", #"{}"#, false),
        ("contains", "\"test\"", #"{"x": "a test run"}"#, true),
        ("contains", "\"test\"", #"{"x": "a run"}"#, false),
        ("contains", "\"b\"", #"{"x": ["a", "b"]}"#, true),
        ("contains", "3", #"{"x": [1, 2]}"#, false),
        ("contains", "\"k\"", #"{"x": {"k": 1}}"#, true),
        ("contains", "\"k\"", #"{"x": 5}"#, false),
        ("contains", "\"k\"", #"{}"#, false),
        ("exists", "true", #"{"x": null}"#, true),
        ("exists", "true", #"{}"#, false),
        ("exists", "false", #"{}"#, true),
        ("exists", "false", #"{"x": 0}"#, false),
    ]

    @Test(arguments: table)
    func operatorsCompareAsDocumented(op: String, value: String, args: String, holds: Bool) throws {
        let outcome = try decide(op, value, args: args)
        #expect(outcome.isDeny == holds, "\(op) \(value) on \(args)")
        #expect(outcome.isAllow == !holds)
    }

    @Test func nestedArgumentPathsAndArrayIndexes() throws {
        #expect(try decide("eq", "\"v\"", args: #"{"m": {"k": "v"}}"#, path: "args.m.k").isDeny)
        #expect(try decide("eq", "\"b\"", args: #"{"items": ["a", "b"]}"#, path: "args.items.1").isDeny)
        #expect(try decide("eq", "\"b\"", args: #"{"items": ["a", "b"]}"#, path: "args.items.2").isAllow)
        #expect(try decide("exists", "true", args: #"{"m": "scalar"}"#, path: "args.m.k").isAllow)
        #expect(try decide("exists", "true", args: #"[1, 2]"#, path: "args.m").isAllow)
    }

    @Test(arguments: [("agent", "agent-1"), ("grant", "grant-1"), ("session", "session-1"), ("server", "server-1"), ("tool", "t")])
    func identityPathsReadTheCall(path: String, value: String) throws {
        #expect(try decide("eq", "\"\(value)\"", args: "{}", path: path).isDeny)
        #expect(try decide("eq", "\"other\"", args: "{}", path: path).isAllow)
    }

    @Test(arguments: [#"{"x": "abc"}"#, #"{"x": true}"#, #"{"x": [1]}"#, #"{"x": "1e999"}"#, #"{"x": "NaN"}"#])
    func numericComparisonOfANonNumberDeniesTheCall(args: String) throws {
        // The rule would deny only above 1000; a value that cannot be compared is denied anyway (fail closed).
        let outcome = try decide("gt", "1000", args: args)
        #expect(outcome.denyReason?.contains("args.x") == true)
        #expect(outcome.denyReason != "matched")
    }

    @Test func nonFiniteArgumentsAreDeniedNotCompared() throws {
        let policy = try loadPolicy(
            "version: '1'\ntools: {t: {rules: [{when: [{path: args.x, op: lt, value: 10}], action: allow}], action: require_approval}}")
        for value in [Double.nan, .infinity, -.infinity] {
            var call = makeCall("t")
            call.arguments = .object(["x": .number(value)])
            let decision = policy.evaluate(call)
            #expect(decision.outcome.denyReason == "args.x is not a finite number")
            #expect(decision.rule == "tools.t.rules[0]")
        }
    }

    @Test func regexOnANonStringDeniesTheCall() throws {
        #expect(try decide("regex", "\"^a\"", args: #"{"x": 5}"#).denyReason?.contains("must be a string") == true)
    }

    @Test func regexOnAnOverlongStringDeniesTheCall() throws {
        let long = String(repeating: "a", count: 2_000_000)
        let outcome = try decide("regex", "\"b{100}\"", args: "{\"x\": \"\(long)\"}")
        #expect(outcome.denyReason?.contains("too long") == true)
    }
}
