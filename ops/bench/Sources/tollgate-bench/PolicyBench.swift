import Foundation
import TollgateCore

/// Decisions per second and per-decision latency for a 200-tool policy with patterns, conditions and limits,
/// measured on one thread. Each sample times a batch of decisions with the monotonic clock and divides, so clock
/// overhead does not dominate sub-microsecond figures.
func runPolicyBench() throws {
    let policy = try PolicyLoader.load(benchPolicyYAML(), fileName: "bench.yaml")
    let calls = benchCalls()
    // The caller's counts: a few counters partly used.
    var counts: [CounterKey: Double] = [:]
    for call in calls {
        for key in policy.counterKeys(for: call) { counts[key] = 3 }
    }

    let batch = 256
    let samples = 4000
    var sink = 0
    func runBatch(_ start: Int) {
        for index in 0..<batch {
            let call = calls[(start + index) % calls.count]
            let decision = policy.evaluate(call, counts: counts)
            sink &+= decision.reservations.count &+ decision.rule.utf8.count
        }
    }
    for warm in 0..<200 { runBatch(warm * batch) }

    let clock = ContinuousClock()
    var perDecision: [Double] = []
    perDecision.reserveCapacity(samples)
    let total = clock.measure {
        for sample in 0..<samples {
            let elapsed = clock.measure { runBatch(sample * batch) }
            perDecision.append(elapsed.seconds * 1e9 / Double(batch))
        }
    }
    perDecision.sort()
    let decisions = Double(samples * batch)
    let seconds = total.seconds

    // The same with counter keys computed per call, as the gateway does (counterKeys, then evaluate).
    let withKeys = clock.measure {
        for index in 0..<(samples * batch / 4) {
            let call = calls[index % calls.count]
            sink &+= policy.counterKeys(for: call).count
            sink &+= policy.evaluate(call, counts: counts).reservations.count
        }
    }
    let withKeysSeconds = withKeys.seconds

    print("policy bench: 200 tools (exact, patterns, conditions, regex, limits), \(calls.count) distinct calls, 1 thread")
    print(String(format: "  evaluate:            %.0f decisions/s", decisions / seconds))
    print(
        String(
            format: "  per decision:        p50 %.2f µs  p99 %.2f µs  max %.2f µs (batches of %d)", perDecision.percentile(0.5) / 1000,
            perDecision.percentile(0.99) / 1000,
            perDecision.last! / 1000, batch))
    print(
        String(
            format: "  counterKeys+evaluate: %.0f decisions/s (%.2f µs each)", decisions / 4 / withKeysSeconds,
            withKeysSeconds * 1e6 / (decisions / 4)))
    if sink == 42 { print("") }  // keep the work observable
}

/// 150 exact tools (a third with conditional rules), 40 patterns, a hidden group, categories and global limits.
func benchPolicyYAML() -> String {
    var lines = [
        "version: '1'",
        "default: deny",
        "hide: [admin_*, debug_dump]",
        "limits: [{counter: all_calls, window: minute, max: 1000000, scope: agent}]",
        "categories: {read: allow, destructive: deny}",
        "tools:",
    ]
    for index in 0..<150 {
        lines.append("  tool_\(index):")
        lines.append("    limits: [{counter: tool_\(index)_rate, window: minute, max: 600, scope: grant}]")
        if index % 3 == 0 {
            lines.append("    rules:")
            lines.append("      - {name: big, when: [{path: args.amount, op: gt, value: 1000}], action: require_approval}")
            lines.append("      - {name: currency, unless: [{path: args.currency, op: in, value: [usd, eur, gbp]}], action: deny}")
            lines.append("      - {name: memo, when: [{path: args.memo, op: regex, value: '^(urgent|asap)[-_ ]'}], action: deny}")
            lines.append(
                "      - {name: spend, when: [{path: args.amount, op: exists, value: true}], limits: [{counter: spend_\(index), window: day, max: 1e9, scope: agent, increment_from: args.amount, algorithm: sliding}]}"
            )
        }
    }
    for index in 0..<40 {
        lines.append("  \"vendor\(index)_*\": {action: allow, limits: [{counter: vendor\(index), window: hour, max: 10000, scope: global}]}")
    }
    for index in 0..<10 {
        lines.append("  \"*_op\(index)\": deny")
    }
    return lines.joined(separator: "\n")
}

func benchCalls() -> [PolicyCall] {
    let now = Date(timeIntervalSince1970: 1_700_000_000)
    var calls: [PolicyCall] = []
    for index in 0..<64 {
        let tool: String
        switch index % 8 {
        case 0, 1, 2: tool = "tool_\((index * 3) % 150)"  // exact, with rules
        case 3: tool = "tool_\(index % 150 + 1)"  // exact, limits only
        case 4: tool = "vendor\(index % 40)_list_things"  // pattern
        case 5: tool = "unknown_op\(index % 10)"  // pattern deny
        case 6: tool = "admin_reset"  // hidden
        default: tool = "not_in_policy_\(index)"  // default deny
        }
        let arguments: JSONValue = .object([
            "amount": .number(Double(index * 37 % 2000)),
            "currency": .string(index % 5 == 0 ? "jpy" : "usd"),
            "memo": .string(index % 7 == 0 ? "urgent-payment" : "invoice \(index)"),
            "metadata": .object(["order": .string("A-\(index)")]),
        ])
        calls.append(
            PolicyCall(
                agent: "agent-\(index % 4)", grant: "grant-\(index % 2)", session: "s-\(index)", server: "bench", tool: tool,
                arguments: arguments, category: index % 8 == 7 ? .read : nil, now: now))
    }
    return calls
}
