import Foundation
import Testing

@testable import TollgateCore

@Suite("Policy evaluation: limits")
struct PolicyLimitTests {
    func policy(_ limit: String, extra: String = "") throws -> CompiledPolicy {
        try loadPolicy("version: '1'\ntools:\n  t:\n    limits:\n      - \(limit)\n\(extra)")
    }

    @Test(arguments: [
        (PolicyLimit.Scope.grant, "grant:grant-1"), (.agent, "agent:agent-1"), (.session, "session:session-1"), (.global, "global"),
    ])
    func scopesKeyTheCounter(scope: PolicyLimit.Scope, key: String) throws {
        let compiled = try policy("{counter: c, window: minute, max: 2, scope: \(scope.rawValue)}")
        #expect(compiled.counterKeys(for: makeCall("t")).map(\.scope) == [key])
    }

    @Test func fixedWindowsAreAlignedToTheEpochInUTC() throws {
        let compiled = try policy("{counter: c, window: day, max: 2}")
        let key = try #require(compiled.counterKeys(for: makeCall("t")).first)
        #expect(key.windowStart == 1_699_920_000)  // 2023-11-14T00:00:00Z
        #expect(key.windowSeconds == 86400)
        let ninety = try policy("{counter: c, window: 90s, max: 2}")
        #expect(ninety.counterKeys(for: makeCall("t")).first?.windowStart == 1_699_999_920)  // a multiple of 90
    }

    @Test func fixedWindowAllowsUpToMaxThenLimitsUntilTheWindowEnds() throws {
        let compiled = try policy("{counter: c, window: hour, max: 3}")
        let call = makeCall("t")
        let key = compiled.counterKeys(for: call)[0]
        #expect(compiled.evaluate(call, counts: [key: 2]).outcome.isAllow)
        let limited = compiled.evaluate(call, counts: [key: 3])
        #expect(limited.outcome.retryAfter == 3600 - 800)  // 13:20 into the hour
        #expect(limited.rule == "tools.t.limits[0]")
        guard case .limited(_, let reason) = limited.outcome else { return }
        #expect(reason == "limit reached on `c`: at most 3 per hour in total")
    }

    @Test func slidingWindowWeighsThePreviousWindow() throws {
        let compiled = try policy("{counter: c, window: minute, max: 10, algorithm: sliding, scope: agent}")
        let call = makeCall("t", at: testTime(10))  // 30 s into the minute: the previous minute weighs 0.5
        let keys = compiled.counterKeys(for: call)
        #expect(keys.count == 2)
        #expect(keys[1].windowStart == keys[0].windowStart - 60)
        let (current, previous) = (keys[0], keys[1])
        // 0.5 * 10 + 4 + 1 = 10: allowed, with the ceiling for the current window at 10 - 5 = 5.
        let allowed = compiled.evaluate(call, counts: [current: 4, previous: 10])
        #expect(allowed.outcome.isAllow)
        #expect(allowed.reservations.first?.ceiling == 5)
        #expect(allowed.reservations.first?.key == current)
        // 0.5 * 10 + 5 + 1 = 11: limited until the previous minute weighs 0.4, 6 s later.
        let limited = compiled.evaluate(call, counts: [current: 5, previous: 10])
        #expect(limited.outcome.retryAfter == 6)
        // The current window alone is full: wait for it to end (30 s) and decay to 9/10 of its weight (6 s).
        let full = compiled.evaluate(call, counts: [current: 10, previous: 0])
        #expect(full.outcome.retryAfter == 36)
    }

    @Test func incrementFromAddsTheArgument() throws {
        let compiled = try policy("{counter: spend, window: day, max: 1000, increment_from: args.amount}")
        let call = makeCall("t", args: #"{"amount": 250}"#)
        let key = compiled.counterKeys(for: call)[0]
        let decision = compiled.evaluate(call, counts: [key: 750])
        #expect(decision.outcome.isAllow)
        #expect(decision.reservations.first?.amount == 250)
        #expect(compiled.evaluate(call, counts: [key: 751]).outcome.retryAfter != nil)
        #expect(compiled.evaluate(makeCall("t", args: #"{"amount": "250"}"#)).reservations.first?.amount == 250)
    }

    @Test(arguments: [#"{}"#, #"{"amount": -5}"#, #"{"amount": "ten"}"#, #"{"amount": true}"#, #"{"amount": "1e999"}"#])
    func incrementFromWithoutAUsableNumberDenies(args: String) throws {
        let compiled = try policy("{counter: spend, window: day, max: 1000, increment_from: args.amount}")
        let decision = compiled.evaluate(makeCall("t", args: args))
        #expect(decision.outcome.denyReason?.hasPrefix("args.amount must be a non-negative number") == true)
        #expect(decision.rule == "tools.t.limits[0]")
    }

    @Test func aCallLargerThanTheLimitIsDeniedNotLimited() throws {
        let compiled = try policy("{counter: spend, window: day, max: 1000, increment_from: args.amount}")
        let decision = compiled.evaluate(makeCall("t", args: #"{"amount": 5000}"#))
        #expect(decision.outcome.denyReason?.contains("this call alone (its args.amount) is more than the limit on `spend`") == true)
        #expect(decision.outcome.denyReason?.contains("5000") == false, "the reason quotes no argument value")
    }

    @Test func fixedIncrementIsAdded() throws {
        let compiled = try policy("{counter: c, window: minute, max: 10, increment: 4}")
        let call = makeCall("t")
        let key = compiled.counterKeys(for: call)[0]
        #expect(compiled.evaluate(call, counts: [key: 6]).reservations.first?.amount == 4)
        #expect(compiled.evaluate(call, counts: [key: 7]).outcome.retryAfter != nil)
    }

    @Test func policyLimitsApplyToEveryAllowedCall() throws {
        let compiled = try loadPolicy(
            "version: '1'\ndefault: allow\nlimits: [{counter: all, window: minute, max: 100, scope: agent}]\ntools: {t: {limits: [{counter: c, window: minute, max: 5}]}, d: deny}"
        )
        #expect(compiled.counterKeys(for: makeCall("t")).map(\.counter) == ["all", "c"])
        #expect(compiled.counterKeys(for: makeCall("other")).map(\.counter) == ["all"])
        #expect(compiled.counterKeys(for: makeCall("d")).isEmpty)
        let call = makeCall("t")
        let decision = compiled.evaluate(call, counts: [compiled.counterKeys(for: call)[0]: 100])
        #expect(decision.rule == "limits[0]")
    }

    @Test func aCounterNamedTwiceIsIncrementedOnceWithTheLowestCeiling() throws {
        let compiled = try loadPolicy(
            """
            version: '1'
            tools:
              t:
                limits: [{counter: c, window: minute, max: 10, scope: grant}]
                rules:
                  - {when: [{path: args.big, op: eq, value: true}], limits: [{counter: c, window: minute, max: 3, scope: grant}]}
            """)
        let call = makeCall("t", args: #"{"big": true}"#)
        #expect(compiled.counterKeys(for: call).count == 1)
        let key = compiled.counterKeys(for: call)[0]
        let decision = compiled.evaluate(call, counts: [key: 1])
        #expect(decision.reservations.count == 1)
        #expect(decision.reservations[0].ceiling == 3)
        let limited = compiled.evaluate(call, counts: [key: 3])
        #expect(limited.rule == "tools.t.rules[0].limits[0]")
        #expect(compiled.evaluate(makeCall("t"), counts: [key: 3]).outcome.isAllow)
    }

    @Test func theLongestWaitAmongExceededLimitsIsReported() throws {
        let compiled = try loadPolicy(
            "version: '1'\ntools: {t: {limits: [{counter: a, window: minute, max: 1}, {counter: b, window: hour, max: 1}]}}")
        let call = makeCall("t")
        let keys = compiled.counterKeys(for: call)
        let decision = compiled.evaluate(call, counts: [keys[0]: 1, keys[1]: 1])
        #expect(decision.rule == "tools.t.limits[0]")
        #expect(decision.outcome.retryAfter == 2800)
    }

    @Test(arguments: [Double.nan, -.infinity, .infinity])
    func corruptCountsFailClosed(count: Double) throws {
        let compiled = try policy("{counter: c, window: minute, max: 5}")
        let call = makeCall("t")
        #expect(compiled.evaluate(call, counts: [compiled.counterKeys(for: call)[0]: count]).outcome.retryAfter != nil)
    }

    @Test func missingCountsAreZero() throws {
        let compiled = try policy("{counter: c, window: minute, max: 1}")
        #expect(compiled.evaluate(makeCall("t")).outcome.isAllow)
    }

    @Test func windowsFollowTheClock() throws {
        let compiled = try policy("{counter: c, window: minute, max: 1}")
        let first = compiled.counterKeys(for: makeCall("t", at: testTime(0)))[0]
        let later = compiled.counterKeys(for: makeCall("t", at: testTime(40)))[0]
        #expect(later.windowStart == first.windowStart + 60)
        #expect(compiled.evaluate(makeCall("t", at: testTime(40)), counts: [first: 1]).outcome.isAllow)
    }

    @Test func absurdClockValuesDoNotTrap() throws {
        let compiled = try policy("{counter: c, window: 1d, max: 1, algorithm: sliding}")
        for time in [Date.distantPast, .distantFuture, Date(timeIntervalSince1970: 1e300), Date(timeIntervalSince1970: -1e300)] {
            let call = makeCall("t", at: time)
            _ = compiled.evaluate(call, counts: Dictionary(uniqueKeysWithValues: compiled.counterKeys(for: call).map { ($0, 5) }))
        }
    }
}
