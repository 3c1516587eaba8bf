/// A validated policy prepared for evaluation: tool keys indexed, patterns sorted by precedence, regular expressions
/// compiled, reasons and paths precomputed, content hash taken.
///
/// Evaluation is pure: the same policy, call and counts always give the same decision. A decision that involves
/// limits takes two steps, so that the caller can read counts from its store in between:
///
/// ```swift
/// let keys = policy.counterKeys(for: call)
/// let counts = try await store.counts(for: keys)        // [CounterKey: Double]; a missing key counts as 0
/// let decision = policy.evaluate(call, counts: counts)
/// ```
public struct CompiledPolicy: Sendable {
    /// The model this was compiled from.
    public let policy: Policy
    /// `sha256:` and the hex SHA-256 of the canonical JSON form: the same for the same policy whatever its format,
    /// layout, key order or comments.
    public let contentHash: String

    let exact: [String: Entry]
    /// Pattern keys, most specific first.
    let patterns: [(pattern: ToolPattern, entry: Entry)]
    let hideExact: [String: Int]
    let hidePatterns: [(pattern: ToolPattern, index: Int)]
    let categories: [RiskCategory: Entry]
    let limits: [Limit]
    let defaultDenyReason = "the policy does not allow this tool (default: deny)"

    /// Compiles a policy model. Models from ``PolicyLoader`` always compile; a model built in code may fail here
    /// (a bad regular expression), with diagnostics that have no line numbers.
    public init(_ policy: Policy, fileName: String = "policy") throws(SourceValidationError) {
        var diagnostics: [SourceDiagnostic] = []
        func compileEntry(_ entry: ToolPolicy, path: String) -> Entry {
            Entry(entry, path: path, diagnostics: &diagnostics, file: fileName)
        }
        var exact: [String: Entry] = [:]
        var patterns: [(ToolPattern, Entry)] = []
        for (key, entry) in policy.tools {
            let compiled = compileEntry(entry, path: FieldPath.key("tools", key))
            if ToolPattern.isPattern(key) {
                patterns.append((ToolPattern(key), compiled))
            } else {
                exact[key] = compiled
            }
        }
        patterns.sort { ToolPattern.precedes($0.0, $1.0) }
        var hideExact: [String: Int] = [:]
        var hidePatterns: [(ToolPattern, Int)] = []
        for (index, name) in policy.hide.enumerated() {
            if ToolPattern.isPattern(name) {
                hidePatterns.append((ToolPattern(name), index))
            } else if hideExact[name] == nil {
                hideExact[name] = index
            }
        }
        var categories: [RiskCategory: Entry] = [:]
        for (category, entry) in policy.categories {
            categories[category] = compileEntry(entry, path: FieldPath.key("categories", category.rawValue))
        }
        let limits = policy.limits.enumerated().map { Limit($1, path: FieldPath.index("limits", $0)) }
        guard diagnostics.isEmpty else { throw SourceValidationError(diagnostics: diagnostics) }
        self.policy = policy
        self.contentHash = policy.contentHash
        self.exact = exact
        self.patterns = patterns
        self.hideExact = hideExact
        self.hidePatterns = hidePatterns
        self.categories = categories
        self.limits = limits
    }

    // MARK: Compiled parts

    struct Limit: Sendable {
        let limit: PolicyLimit
        let path: String
        let scopeDescription: String

        init(_ limit: PolicyLimit, path: String) {
            self.limit = limit
            self.path = path
            let per = limit.scope == .global ? "in total" : "per \(limit.scope.rawValue)"
            let amount = limit.incrementFrom.map { "\(CanonicalNumber.format(limit.max)) of \($0)" } ?? CanonicalNumber.format(limit.max)
            self.scopeDescription = "at most \(amount) per \(PolicyDuration.format(limit.window)) \(per)"
        }
    }

    struct Condition: Sendable {
        let condition: PolicyCondition
        let regex: PolicyRegex?
        let number: Double
    }

    struct Rule: Sendable {
        let path: String
        let name: String?
        let when: [Condition]
        let unless: [Condition]
        let action: PolicyAction?
        let denyReason: String
        let approval: ApprovalRequirement
        let limits: [Limit]
    }

    struct Entry: Sendable {
        let path: String
        let action: PolicyAction
        let denyReason: String
        let approval: ApprovalRequirement
        let limits: [Limit]
        let rules: [Rule]

        func fallbackNote(_ action: String) -> String {
            rules.isEmpty ? "the entry's action is \(action)" : "no rule decided; the entry's action is \(action)"
        }

        init(_ entry: ToolPolicy, path: String, diagnostics: inout [SourceDiagnostic], file: String) {
            self.path = path
            self.action = entry.action ?? .allow
            self.denyReason = entry.reason ?? "the policy denies this tool (\(path))"
            self.approval = ApprovalRequirement(entry.approval, reason: entry.reason)
            self.limits = entry.limits.enumerated().map { Limit($1, path: FieldPath.index(FieldPath.key(path, "limits"), $0)) }
            self.rules = entry.rules.enumerated().map { index, rule in
                let rulePath = FieldPath.index(FieldPath.key(path, "rules"), index)
                func compile(_ conditions: [PolicyCondition], _ key: String) -> [Condition] {
                    conditions.enumerated().map { offset, condition in
                        var regex: PolicyRegex?
                        if condition.op == .regex, case .string(let pattern) = condition.value {
                            do {
                                regex = try PolicyRegex(pattern)
                            } catch {
                                diagnostics.append(
                                    SourceDiagnostic(
                                        code: .invalidRegex,
                                        file: file,
                                        location: nil,
                                        path: FieldPath.key(FieldPath.index(FieldPath.key(rulePath, key), offset), "value"),
                                        message: "the regular expression `\(pattern)` does not compile: \(error)"
                                    )
                                )
                            }
                        }
                        return Condition(condition: condition, regex: regex, number: condition.value.doubleValue ?? .nan)
                    }
                }
                let named = rule.name.map { " \"\($0)\"" } ?? ""
                return Rule(
                    path: rulePath,
                    name: rule.name,
                    when: compile(rule.when, "when"),
                    unless: compile(rule.unless, "unless"),
                    action: rule.action,
                    denyReason: rule.reason ?? "the policy denies this call (\(rulePath)\(named))",
                    approval: ApprovalRequirement(rule.approval, reason: rule.reason),
                    limits: rule.limits.enumerated().map { Limit($1, path: FieldPath.index(FieldPath.key(rulePath, "limits"), $0)) }
                )
            }
        }
    }
}
