import Foundation
import Testing

@testable import TollgateCore

/// The GitHub and Stripe examples from Intercept's policy reference (POLICY.md, "Complete examples").
enum InterceptExamples {
    static let github = """
        version: "1"
        description: "GitHub MCP server policies"

        hide:
          - transfer_repository
          - list_webhooks

        tools:
          create_issue:
            rules:
              - name: "hourly issue limit"
                rate_limit: 5/hour
                on_deny: "Hourly limit of 5 new issues reached"

          create_pull_request:
            rules:
              - name: "hourly pr limit"
                rate_limit: 3/hour
                on_deny: "Hourly limit of 3 new pull requests reached"

          delete_repository:
            rules:
              - name: "block repo deletion"
                action: "deny"
                on_deny: "Repository deletion is not permitted via AI agents"

          "*":
            rules:
              - name: "global rate limit"
                rate_limit: 60/minute
        """

    static let stripe = """
        version: "1"
        description: "Stripe MCP server policies"

        tools:
          create_charge:
            rules:
              - name: "max single charge"
                conditions:
                  - path: "args.amount"
                    op: "lte"
                    value: 50000
                on_deny: "Single charge cannot exceed $500.00"

              - name: "daily spend cap"
                conditions:
                  - path: "state.create_charge.daily_spend"
                    op: "lte"
                    value: 1000000
                on_deny: "Daily spending cap of $10,000.00 reached"
                state:
                  counter: "daily_spend"
                  window: "day"
                  increment_from: "args.amount"

              - name: "allowed currencies"
                conditions:
                  - path: "args.currency"
                    op: "in"
                    value: ["usd", "eur"]
                on_deny: "Only USD and EUR charges are permitted"

          create_refund:
            rules:
              - name: "refund limit"
                conditions:
                  - path: "args.amount"
                    op: "lte"
                    value: 10000
                on_deny: "Refunds over $100.00 require manual processing"

              - name: "daily refund count"
                conditions:
                  - path: "state.create_refund.daily_count"
                    op: "lte"
                    value: 10
                on_deny: "Daily refund limit (10) reached"
                state:
                  counter: "daily_count"
                  window: "day"

          delete_customer:
            rules:
              - name: "block destructive action"
                action: "deny"
                on_deny: "Customer deletion is not permitted via AI agents"

          "*":
            rules:
              - name: "global rate limit"
                conditions:
                  - path: "state._global.calls_per_minute"
                    op: "lte"
                    value: 60
                on_deny: "Rate limit: maximum 60 tool calls per minute"
                state:
                  counter: "calls_per_minute"
                  window: "minute"
        """
}

@Suite("Import from Intercept")
struct InterceptImporterTests {
    func compile(_ text: String) throws -> CompiledPolicy {
        let result = try InterceptImporter.convert(text, fileName: "intercept.yaml")
        return try CompiledPolicy(result.policy)
    }

    /// The decision with every counter at `count`.
    func decide(_ policy: CompiledPolicy, _ call: PolicyCall, count: Double = 0) -> PolicyDecision {
        policy.evaluate(call, counts: Dictionary(uniqueKeysWithValues: policy.counterKeys(for: call).map { ($0, count) }))
    }

    @Test func githubExampleKeepsItsMeaning() throws {
        let policy = try compile(InterceptExamples.github)
        #expect(policy.policy.defaultAction == .allow)
        #expect(policy.policy.description == "GitHub MCP server policies")
        #expect(policy.evaluate(makeCall("transfer_repository")).outcome.isHidden)
        #expect(policy.visibleTools(names: ["create_issue", "list_webhooks", "get_me"]) == ["create_issue", "get_me"])
        #expect(policy.evaluate(makeCall("delete_repository")).outcome.denyReason == "Repository deletion is not permitted via AI agents")

        let issue = makeCall("create_issue")
        let keys = policy.counterKeys(for: issue)
        #expect(keys.map(\.counter) == ["create_issue._rate_hour", "_global._rate_minute"])
        #expect(keys.allSatisfy { $0.scope == "global" })
        #expect(policy.evaluate(issue, counts: [keys[0]: 4]).outcome.isAllow)
        let sixth = policy.evaluate(issue, counts: [keys[0]: 5])
        #expect(sixth.outcome.retryAfter != nil)
        #expect(sixth.rule == "tools.create_issue.limits[0]")
        #expect(policy.evaluate(issue, counts: [keys[1]: 60]).outcome.retryAfter != nil)

        let pr = makeCall("create_pull_request")
        #expect(decide(policy, pr, count: 2).outcome.isAllow)
        #expect(decide(policy, pr, count: 3).outcome.retryAfter != nil)
        // Unlisted tools get the "*" rules.
        let other = makeCall("get_me")
        #expect(policy.counterKeys(for: other).map(\.counter) == ["_global._rate_minute"])
        #expect(decide(policy, other, count: 59).outcome.isAllow)
        #expect(decide(policy, other, count: 60).outcome.retryAfter != nil)
    }

    @Test func stripeExampleKeepsItsMeaning() throws {
        let policy = try compile(InterceptExamples.stripe)
        let charge = #"{"amount": 5000, "currency": "usd"}"#
        #expect(decide(policy, makeCall("create_charge", args: charge)).outcome.isAllow)
        #expect(
            decide(policy, makeCall("create_charge", args: #"{"amount": 50001, "currency": "usd"}"#)).outcome.denyReason
                == "Single charge cannot exceed $500.00")
        #expect(
            decide(policy, makeCall("create_charge", args: #"{"amount": 100, "currency": "gbp"}"#)).outcome.denyReason
                == "Only USD and EUR charges are permitted")
        // A missing argument fails the condition, as in Intercept.
        #expect(decide(policy, makeCall("create_charge", args: #"{"currency": "usd"}"#)).outcome.denyReason == "Single charge cannot exceed $500.00")

        // The daily spend counter adds the amount; 995,000 spent leaves room for 5,000 but not 5,001.
        let call = makeCall("create_charge", args: charge)
        let keys = policy.counterKeys(for: call)
        #expect(keys.map(\.counter) == ["create_charge.daily_spend", "_global.calls_per_minute"])
        #expect(keys[0].windowSeconds == 86400)
        let decision = policy.evaluate(call, counts: [keys[0]: 995_000])
        #expect(decision.outcome.isAllow)
        #expect(decision.reservations.map(\.amount) == [5000, 1])
        #expect(policy.evaluate(call, counts: [keys[0]: 995_001]).outcome.retryAfter != nil)

        let refund = makeCall("create_refund", args: #"{"amount": 100}"#)
        #expect(decide(policy, refund, count: 9).outcome.isAllow)
        #expect(decide(policy, refund, count: 10).outcome.retryAfter != nil)
        #expect(
            decide(policy, makeCall("create_refund", args: #"{"amount": 10001}"#)).outcome.denyReason
                == "Refunds over $100.00 require manual processing")

        #expect(decide(policy, makeCall("delete_customer")).outcome.denyReason == "Customer deletion is not permitted via AI agents")
        // Every tool shares the global per-minute counter.
        #expect(decide(policy, makeCall("list_customers"), count: 60).outcome.retryAfter != nil)
        #expect(decide(policy, makeCall("list_customers"), count: 59).outcome.isAllow)
    }

    @Test func convertedPoliciesRoundTripThroughTheCanonicalForm() throws {
        for example in [InterceptExamples.github, InterceptExamples.stripe] {
            let result = try InterceptImporter.convert(example, fileName: "x.yaml")
            #expect(try PolicyLoader.parse(result.policy.canonicalYAML, fileName: "y.yaml") == result.policy)
        }
    }

    @Test func defaultDenyKeepsUnlistedToolsOut() throws {
        let policy = try compile(
            "version: '1'\ndefault: deny\ntools:\n  read_file:\n    rules: []\n  '*':\n    rules:\n      - {name: g, rate_limit: 10/minute}")
        #expect(policy.evaluate(makeCall("write_file")).outcome.isDeny)
        #expect(policy.evaluate(makeCall("read_file")).outcome.isAllow)
        #expect(policy.counterKeys(for: makeCall("read_file")).map(\.counter) == ["_global._rate_minute"])
    }

    @Test func ltOnAnIntegerCounterAllowsOneFewer() throws {
        let policy = try compile(
            """
            version: '1'
            tools:
              t:
                rules:
                  - name: r
                    conditions: [{path: state.t.n, op: lt, value: 3}]
                    state: {counter: n, window: minute}
            """)
        #expect(policy.policy.tools["t"]?.limits.first?.max == 2)
    }

    @Test func importErrorsAreReportedWithLocations() {
        do {
            _ = try InterceptImporter.convert(
                """
                version: "1"
                tools:
                  t:
                    rules:
                      - name: a
                        conditions: [{path: state.t.missing, op: lte, value: 1}]
                      - name: b
                        conditions: [{path: state.t.n, op: gt, value: 1}]
                        state: {counter: n, window: hour}
                      - name: c
                        action: deny
                        rate_limit: 5/hour
                      - name: d
                        rate_limit: 5/fortnight
                      - name: e
                        conditions: [{path: body.x, op: eq, value: 1}]
                """, fileName: "bad.yaml")
            Issue.record("expected errors")
        } catch {
            #expect(error.diagnostics.map(\.code) == [.unsupportedImport, .unsupportedImport, .unsupportedImport, .invalidValue, .invalidPath])
            #expect(error.diagnostics.first?.location?.line == 6)
            #expect(error.diagnostics.first?.path == "tools.t.rules[0].conditions[0].path")
        }
    }
}
