import Foundation
import PropertyBased
import Testing

@testable import TollgateCore

/// Builds values from a list of random choices, so that shrinking the list shrinks the value.
struct ChoiceReader {
    var choices: [UInt32]
    var index = 0

    mutating func next(_ bound: Int) -> Int {
        defer { index += 1 }
        guard index < choices.count, bound > 0 else { return 0 }
        return Int(choices[index] % UInt32(bound))
    }

    static let strings = ["", "a", "amount", "usd", "0", "1e3", "-5", "NaN", "yes", "null", "é", "😀", "a\"b", "line\nbreak", "*", "x: y"]
    static let numbers: [Double] = [
        0, -0.0, 1, -1, 0.5, 1000, 1e308, -1e308, .leastNonzeroMagnitude, .nan, .infinity, -.infinity, 2.5e15, 9_007_199_254_740_992,
    ]

    mutating func string() -> String { Self.strings[next(Self.strings.count)] }

    mutating func json(depth: Int = 0) -> JSONValue {
        switch next(depth > 3 ? 4 : 7) {
        case 0: return .null
        case 1: return .bool(next(2) == 0)
        case 2: return .number(Self.numbers[next(Self.numbers.count)])
        case 3: return .string(string())
        case 4, 5:
            var members: [String: JSONValue] = [:]
            for _ in 0..<next(4) { members[["amount", "currency", "x", "memo", "items", "0"][next(6)]] = json(depth: depth + 1) }
            return .object(members)
        default:
            return .array((0..<next(4)).map { _ in json(depth: depth + 1) })
        }
    }
}

@Suite("Policy properties")
struct PolicyPropertyTests {
    static let choices = Gen.uint32(in: 0...UInt32.max).array(of: 0...80)

    static let policy: CompiledPolicy = {
        do {
            return try PolicyLoader.load(
                """
                version: '1'
                default: allow
                hide: ["secret_*"]
                limits: [{counter: all, window: minute, max: 100, scope: agent, algorithm: sliding}]
                tools:
                  "*":
                    limits: [{counter: spend, window: day, max: 1e9, increment_from: args.amount}]
                    rules:
                      - {when: [{path: args.amount, op: gt, value: 1000}], action: require_approval}
                      - {when: [{path: args.currency, op: not_in, value: [usd, eur]}], action: deny}
                      - {when: [{path: args.memo, op: regex, value: "^(a+)+$"}], action: deny}
                      - {when: [{path: args.items.0, op: contains, value: "a"}], action: allow}
                      - {when: [{path: args.x, op: exists, value: true}, {path: args.x, op: lte, value: 0}], action: allow}
                """,
                fileName: "property.yaml")
        } catch {
            fatalError("\(error)")
        }
    }()

    @Test func evaluationNeverTrapsOnArbitraryArguments() async {
        await propertyCheck(count: 500, input: Self.choices) { choices in
            var reader = ChoiceReader(choices: choices)
            let arguments = reader.json()
            let call = PolicyCall(
                agent: reader.string(), grant: reader.string(), session: reader.string(), server: "s", tool: ["t", "secret_x", ""][reader.next(3)],
                arguments: arguments, category: nil, now: Date(timeIntervalSince1970: ChoiceReader.numbers[reader.next(ChoiceReader.numbers.count)]))
            let keys = Self.policy.counterKeys(for: call)
            let counts = Dictionary(keys.map { ($0, ChoiceReader.numbers[reader.next(ChoiceReader.numbers.count)]) }, uniquingKeysWith: { a, _ in a })
            let decision = Self.policy.evaluate(call, counts: counts)
            // Whatever the input, the decision is well-formed and explainable.
            #expect(!decision.rule.isEmpty)
            #expect(decision.policyHash == Self.policy.contentHash)
            for reservation in decision.reservations {
                #expect(reservation.amount.isFinite && reservation.amount >= 0)
            }
            if case .limited(let seconds, _) = decision.outcome { #expect(seconds >= 1) }
            #expect(Self.policy.explain(call, counts: counts).decision == decision)
        }
    }

    /// A reason is recorded with the decision, where `store_arguments: hash` or `keys` must keep argument values out:
    /// whatever the policy and the arguments, no reason quotes an argument's value.
    @Test func noReasonQuotesAnArgumentValue() async {
        let canaries: [JSONValue] = [
            "CANARY-7f3a", 73519.25, -73519.25, "73519.25", "-73519.25", "1e99999", ["CANARY-7f3a"], ["amount": "CANARY-7f3a"], true,
        ]
        await propertyCheck(count: 500, input: Self.choices) { choices in
            var reader = ChoiceReader(choices: choices)
            let policy: CompiledPolicy
            do {
                policy = try CompiledPolicy(Self.policy(from: &reader))
            } catch {
                return
            }
            var arguments: [String: JSONValue] = [:]
            for name in ["amount", "x", "currency", "memo", "items"] where reader.next(3) != 0 {
                arguments[name] = canaries[reader.next(canaries.count)]
            }
            let tools = ["read_file", "transfer", "Binance1", "x_delete", "abc", "weird.name", "yes", "123", "other"]
            let call = PolicyCall(
                agent: "a", grant: "g", session: "s", server: "s", tool: tools[reader.next(tools.count)], arguments: .object(arguments),
                category: reader.next(2) == 0 ? nil : RiskCategory.allCases[reader.next(6)], now: testTime())
            let keys = policy.counterKeys(for: call)
            let counts = Dictionary(keys.map { ($0, [0, 59.5, 1e18][reader.next(3)]) }, uniquingKeysWith: { a, _ in a })
            let reason: String?
            switch policy.evaluate(call, counts: counts).outcome {
            case .deny(let text), .limited(_, let text): reason = text
            case .requireApproval(let requirement): reason = requirement.reason
            case .allow, .hidden: reason = nil
            }
            if let reason {
                #expect(!reason.contains("CANARY") && !reason.contains("73519") && !reason.contains("99999"), "\(reason)")
            }
        }
    }

    /// A random but valid policy.
    static func policy(from reader: inout ChoiceReader) -> Policy {
        let names = ["read_file", "transfer", "Binance*", "*_delete", "*", "a?c", "weird.name", "yes", "123"]
        var policy = Policy(defaultAction: reader.next(2) == 0 ? .allow : .deny)
        if reader.next(3) == 0 { policy.description = reader.string() }
        policy.hide = Array(Set((0..<reader.next(3)).map { _ in names[reader.next(names.count)] })).sorted()
        var counter = 0
        func limit(_ reader: inout ChoiceReader) -> PolicyLimit {
            counter += 1
            let incrementFrom = reader.next(3) == 0 ? ValuePath(root: .args, components: ["amount"]) : nil
            return PolicyLimit(
                counter: "c\(counter)",
                window: [1, 60, 90, 3600, 86400, 900][reader.next(6)],
                max: [1, 0.5, 1e18, 60][reader.next(4)],
                scope: PolicyLimit.Scope.allCases[reader.next(4)],
                algorithm: PolicyLimit.Algorithm.allCases[reader.next(2)],
                increment: incrementFrom != nil || reader.next(2) == 0 ? 1 : 2.5,
                incrementFrom: incrementFrom
            )
        }
        func entry(_ reader: inout ChoiceReader) -> ToolPolicy {
            var entry = ToolPolicy()
            if reader.next(2) == 0 { entry.action = PolicyAction.allCases[reader.next(3)] }
            if reader.next(3) == 0 { entry.reason = reader.string() }
            if entry.action == .requireApproval && reader.next(2) == 0 {
                entry.approval = ApprovalOptions(
                    timeout: 3600, hold: [1, 45][reader.next(2)], quorum: 1, reviewers: reader.next(2) == 0 ? [] : ["r"])
            }
            entry.limits = (0..<reader.next(2)).map { _ in limit(&reader) }
            for _ in 0..<reader.next(3) {
                var rule = PolicyRule(name: reader.next(2) == 0 ? nil : reader.string())
                let ops = PolicyCondition.Operator.allCases
                for _ in 0..<reader.next(3) {
                    let op = ops[reader.next(ops.count)]
                    let value: JSONValue
                    switch op {
                    case .in, .notIn: value = .array([.string(reader.string()), .number(3)])
                    case .lt, .lte, .gt, .gte: value = .number([0, -1.5, 1e300][reader.next(3)])
                    case .exists: value = .bool(reader.next(2) == 0)
                    case .regex: value = .string(["^a", "b+$", "[x-z]{2}"][reader.next(3)])
                    default:
                        var json = reader.json()
                        if case .number(let n) = json, !n.isFinite { json = .number(0) }
                        value = json.withFiniteNumbers
                    }
                    let path = ValuePath(root: [.args, .agent, .tool][reader.next(3)], components: [])
                    let condition = PolicyCondition(path: path.root == .args ? ValuePath(root: .args, components: ["x"]) : path, op: op, value: value)
                    if reader.next(2) == 0 { rule.when.append(condition) } else { rule.unless.append(condition) }
                }
                rule.action = PolicyAction.allCases[reader.next(3)]
                if reader.next(2) == 0 { rule.limits = [limit(&reader)] }
                entry.rules.append(rule)
            }
            return entry
        }
        for _ in 0..<reader.next(4) { policy.tools[names[reader.next(names.count)]] = entry(&reader) }
        if reader.next(2) == 0 { policy.categories[RiskCategory.allCases[reader.next(6)]] = entry(&reader) }
        if reader.next(2) == 0 { policy.limits = [limit(&reader)] }
        return policy
    }

    @Test func formatRoundTrips() async {
        await propertyCheck(count: 300, input: Self.choices) { choices in
            var reader = ChoiceReader(choices: choices)
            let policy = Self.policy(from: &reader)
            do {
                let yaml = try PolicyLoader.parse(policy.canonicalYAML, fileName: "p.yaml")
                #expect(yaml == policy, "\(policy.canonicalYAML)")
                let json = try PolicyLoader.parse(policy.canonicalJSON, fileName: "p.json")
                #expect(json == policy, "\(policy.canonicalJSON)")
                #expect(yaml.contentHash == policy.contentHash)
            } catch {
                Issue.record("\(error)\n\(policy.canonicalYAML)")
            }
        }
    }
}

extension JSONValue {
    /// The value with non-finite numbers replaced by 0 (they cannot be written in a policy).
    var withFiniteNumbers: JSONValue {
        switch self {
        case .number(let value): value.isFinite ? self : .number(0)
        case .array(let items): .array(items.map(\.withFiniteNumbers))
        case .object(let members): .object(members.mapValues(\.withFiniteNumbers))
        default: self
        }
    }
}
