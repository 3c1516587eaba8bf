/// Evaluation: hide, then the tool entry (exact name, else the most specific pattern, else the tool's risk category,
/// else `default`), then its rules, then limits. See "Precedence" in `docs/policy.md`.
extension CompiledPolicy {
    /// The counts ``evaluate(_:counts:)`` will read for this call: one key per applicable limit (two for `sliding`,
    /// the current and the previous window). Empty when the call is hidden or denied without looking at limits.
    public func counterKeys(for call: PolicyCall) -> [CounterKey] {
        var trace = Trace(enabled: false)
        guard case .proceed(_, _, let limits) = resolve(call, trace: &trace) else { return [] }
        let now = call.now.timeIntervalSince1970
        var keys: [CounterKey] = []
        for limit in limits {
            let key = counterKey(limit.limit, call: call, now: now)
            if !keys.contains(key) { keys.append(key) }
            if limit.limit.algorithm == .sliding {
                var previous = key
                previous.windowStart -= Int64(limit.limit.window)
                if !keys.contains(previous) { keys.append(previous) }
            }
        }
        return keys
    }

    /// Decides a call. `counts` holds the current value of the keys ``counterKeys(for:)`` returned; a missing key is 0.
    public func evaluate(_ call: PolicyCall, counts: [CounterKey: Double] = [:]) -> PolicyDecision {
        var trace = Trace(enabled: false)
        return decide(call, counts: counts, trace: &trace)
    }

    /// Decides a call and says why: the deciding rule and every rule that did not apply, with the reason.
    public func explain(_ call: PolicyCall, counts: [CounterKey: Double] = [:]) -> PolicyExplanation {
        var trace = Trace(enabled: true)
        let decision = decide(call, counts: counts, trace: &trace)
        return PolicyExplanation(decision: decision, steps: trace.steps)
    }

    // MARK: Implementation

    struct Trace {
        let enabled: Bool
        var steps: [PolicyExplanation.Step] = []

        init(enabled: Bool) { self.enabled = enabled }

        mutating func note(_ path: String, applied: Bool, _ detail: @autoclosure () -> String) {
            if enabled { steps.append(PolicyExplanation.Step(path: path, applied: applied, detail: detail())) }
        }
    }

    enum Resolution {
        /// Decided before limits: hidden, or denied.
        case final(PolicyDecision.Outcome, rule: String)
        /// Allowed or held for approval, subject to these limits.
        case proceed(PolicyDecision.Outcome, rule: String, limits: [Limit])
    }

    private func decide(_ call: PolicyCall, counts: [CounterKey: Double], trace: inout Trace) -> PolicyDecision {
        switch resolve(call, trace: &trace) {
        case .final(let outcome, let rule):
            return PolicyDecision(outcome: outcome, rule: rule, policyHash: contentHash)
        case .proceed(let outcome, let rule, let limits):
            return applyLimits(limits, outcome: outcome, rule: rule, call: call, counts: counts, trace: &trace)
        }
    }

    func resolve(_ call: PolicyCall, trace: inout Trace) -> Resolution {
        if let index = hideIndex(of: call.tool) {
            let path = FieldPath.index("hide", index)
            trace.note(path, applied: true, "`\(policy.hide[index])` hides the tool")
            return .final(.hidden, rule: path)
        }
        guard let entry = selectEntry(for: call, trace: &trace) else {
            switch policy.defaultAction {
            case .deny:
                trace.note("default", applied: true, "no tool key or category matches; the default is deny")
                return .final(.deny(reason: defaultDenyReason), rule: "default")
            case .allow:
                trace.note("default", applied: true, "no tool key or category matches; the default is allow")
                return .proceed(.allow, rule: "default", limits: limits)
            }
        }

        var limits = self.limits
        limits.append(contentsOf: entry.limits)
        var approvalRule: Rule?
        var allowRule: Rule?
        for rule in entry.rules {
            switch ruleApplies(rule, call: call, trace: &trace) {
            case .invalid(let reason):
                trace.note(rule.path, applied: true, "the call cannot be checked: \(reason); denied (fail closed)")
                return .final(.deny(reason: reason), rule: rule.path)
            case .fails:
                continue
            case .holds:
                limits.append(contentsOf: rule.limits)
                switch rule.action {
                case .deny:
                    trace.note(rule.path, applied: true, "action deny: \(rule.denyReason)")
                    return .final(.deny(reason: rule.denyReason), rule: rule.path)
                case .requireApproval:
                    trace.note(rule.path, applied: true, "action require_approval" + (approvalRule == nil ? "" : " (an earlier rule already asks)"))
                    if approvalRule == nil { approvalRule = rule }
                case .allow:
                    trace.note(rule.path, applied: true, "action allow")
                    if allowRule == nil { allowRule = rule }
                case nil:
                    trace.note(rule.path, applied: true, "adds \(rule.limits.count) limit(s)")
                }
            }
        }
        if let rule = approvalRule {
            return .proceed(.requireApproval(rule.approval), rule: rule.path, limits: limits)
        }
        if let rule = allowRule {
            return .proceed(.allow, rule: rule.path, limits: limits)
        }
        switch entry.action {
        case .deny:
            trace.note(entry.path, applied: true, entry.fallbackNote("deny"))
            return .final(.deny(reason: entry.denyReason), rule: entry.path)
        case .requireApproval:
            trace.note(entry.path, applied: true, entry.fallbackNote("require_approval"))
            return .proceed(.requireApproval(entry.approval), rule: entry.path, limits: limits)
        case .allow:
            trace.note(entry.path, applied: true, entry.fallbackNote("allow"))
            return .proceed(.allow, rule: entry.path, limits: limits)
        }
    }

    /// The exact key, else the most specific matching pattern, else the category's entry.
    private func selectEntry(for call: PolicyCall, trace: inout Trace) -> Entry? {
        var chosen = exact[call.tool]
        if chosen != nil { trace.note(FieldPath.key("tools", call.tool), applied: true, "exact tool key") }
        if !patterns.isEmpty && (chosen == nil || trace.enabled) {
            let scalars = Array(call.tool.unicodeScalars)
            for (pattern, entry) in patterns where pattern.matches(scalars) {
                if let chosen {
                    trace.note(entry.path, applied: false, "the pattern matches, but \(chosen.path) is more specific")
                } else {
                    chosen = entry
                    trace.note(entry.path, applied: true, "the most specific pattern that matches")
                    if !trace.enabled { break }
                }
            }
        }
        if let chosen {
            if trace.enabled, let category = call.category, let entry = categories[category] {
                trace.note(entry.path, applied: false, "categories apply only to tools that no tool key matches")
            }
            return chosen
        }
        guard let category = call.category else {
            if trace.enabled && !categories.isEmpty {
                trace.note("categories", applied: false, "the tool's risk category is not known")
            }
            return nil
        }
        if let entry = categories[category] {
            trace.note(entry.path, applied: true, "no tool key matches; the tool's category is \(category.rawValue)")
            return entry
        }
        if trace.enabled && !categories.isEmpty {
            trace.note("categories", applied: false, "no entry for the tool's category \(category.rawValue)")
        }
        return nil
    }

    enum Check {
        case holds
        case fails
        case invalid(String)
    }

    private func ruleApplies(_ rule: Rule, call: PolicyCall, trace: inout Trace) -> Check {
        for (offset, condition) in rule.when.enumerated() {
            switch check(condition, call: call) {
            case .holds: continue
            case .fails:
                trace.note(rule.path, applied: false, "when[\(offset)] does not hold: \(describe(condition, call: call))")
                return .fails
            case .invalid(let reason): return .invalid(reason)
            }
        }
        if rule.unless.isEmpty { return .holds }
        for condition in rule.unless {
            switch check(condition, call: call) {
            case .holds: continue
            case .fails: return .holds
            case .invalid(let reason): return .invalid(reason)
            }
        }
        trace.note(rule.path, applied: false, "every `unless` condition holds")
        return .fails
    }

    func value(at path: ValuePath, in call: PolicyCall) -> JSONValue? {
        switch path.root {
        case .agent: return .string(call.agent)
        case .grant: return .string(call.grant)
        case .session: return .string(call.session)
        case .server: return .string(call.server)
        case .tool: return .string(call.tool)
        case .args:
            var current = call.arguments
            for component in path.components {
                switch current {
                case .object(let members):
                    guard let next = members[component] else { return nil }
                    current = next
                case .array(let items):
                    guard let index = Int(component), items.indices.contains(index) else { return nil }
                    current = items[index]
                default:
                    return nil
                }
            }
            return current
        }
    }

    /// A number, or a string that is exactly a decimal number (agents often send amounts as strings).
    static func numeric(_ value: JSONValue) -> Double? {
        switch value {
        case .number(let number): return number
        case .string(let text): return CanonicalNumber.parseDecimal(text)
        default: return nil
        }
    }

    private func check(_ compiled: Condition, call: PolicyCall) -> Check {
        let condition = compiled.condition
        guard let value = value(at: condition.path, in: call) else {
            if condition.op == .exists { return condition.value == .bool(false) ? .holds : .fails }
            return .fails
        }
        switch condition.op {
        case .exists:
            return condition.value == .bool(true) ? .holds : .fails
        case .eq:
            return value == condition.value ? .holds : .fails
        case .neq:
            return value != condition.value ? .holds : .fails
        case .in, .notIn:
            let found = condition.value.arrayValue?.contains(value) ?? false
            return found == (condition.op == .in) ? .holds : .fails
        case .lt, .lte, .gt, .gte:
            guard let number = Self.numeric(value) else {
                return .invalid("\(condition.path) must be a number to be compared, found \(Self.kind(value))")
            }
            guard number.isFinite else { return .invalid("\(condition.path) is not a finite number") }
            let bound = compiled.number
            let holds: Bool
            switch condition.op {
            case .lt: holds = number < bound
            case .lte: holds = number <= bound
            case .gt: holds = number > bound
            default: holds = number >= bound
            }
            return holds ? .holds : .fails
        case .regex:
            guard case .string(let text) = value else {
                return .invalid("\(condition.path) must be a string to match a pattern, found \(Self.kind(value))")
            }
            guard let regex = compiled.regex, let matched = regex.matches(text) else {
                return .invalid("\(condition.path) is too long to match against its pattern")
            }
            return matched ? .holds : .fails
        case .contains:
            switch (value, condition.value) {
            case (.string(let text), .string(let part)): return text.contains(part) ? .holds : .fails
            case (.array(let items), let element): return items.contains(element) ? .holds : .fails
            case (.object(let members), .string(let key)): return members[key] != nil ? .holds : .fails
            default: return .fails
            }
        }
    }

    static func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }

    private func describe(_ compiled: Condition, call: PolicyCall) -> String {
        let condition = compiled.condition
        let expected = "\(condition.op.rawValue) \(condition.value.compactText(limit: 60))"
        guard let value = value(at: condition.path, in: call) else { return "\(condition.path) is absent (wanted \(expected))" }
        return "\(condition.path) is \(value.compactText(limit: 60)), not \(expected)"
    }
}
