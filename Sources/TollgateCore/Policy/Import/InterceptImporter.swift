/// Converts a policy written for PolicyLayer's Intercept into a Tollgate policy with the same meaning.
///
/// ```swift
/// let imported = try InterceptImporter.convert(yaml, fileName: "github.yaml")
/// print(imported.policy.canonicalYAML)
/// imported.notes.forEach { print("note:", $0) }   // where the meaning had to be approximated
/// ```
///
/// How each construct maps:
/// - `default` (Intercept's is `allow` when omitted) is written out; `hide` is copied.
/// - An `evaluate` rule's argument conditions must all hold for the call to go ahead, so it becomes a rule that denies
///   `unless` they all hold, with `on_deny` as the reason. A condition on a missing argument fails in both.
/// - `action: deny` becomes a rule that always denies.
/// - A `state` counter with a `lte N` (or `lt N`) condition on it becomes a limit: the same window, `max: N` (or just
///   under N), `scope: global` (Intercept counts every caller together), `increment` or `increment_from`. `rate_limit:
///   5/hour` becomes a limit of 5 per hour. Being over a limit gives `limited` with a retry time instead of a denial.
/// - Rules under `"*"` apply to every listed tool in Intercept, so they are copied into every tool entry, and kept as a
///   `"*"` entry for unlisted tools when the default is allow. Their counters are shared (`_global.<counter>`).
public enum InterceptImporter {
    /// A converted policy and what a person should know about the conversion.
    public struct Result: Sendable, Hashable {
        public var policy: Policy
        /// Places where the meaning differs slightly, such as a lost `on_deny` message on a counter.
        public var notes: [String]
    }

    public static func convert(_ text: String, fileName: String, limits: SourceLimits = .default) throws(SourceValidationError) -> Result {
        let root = try SourceDocument.read(text, fileName: fileName, format: .yaml, limits: limits, kind: PolicyLoader.kind)
        var converter = Converter(decoder: PolicyDecoder(file: fileName))
        let result = converter.convert(root)
        guard converter.decoder.diagnostics.isEmpty, let result else {
            throw SourceValidationError(diagnostics: SourceDocument.sorted(converter.decoder.diagnostics))
        }
        // The result must be a valid Tollgate policy; check it the way `policy check` would.
        _ = try PolicyLoader.load(result.policy.canonicalYAML, fileName: fileName + " (converted)")
        return result
    }
}

private struct Converter {
    var decoder: PolicyDecoder
    var notes: [String] = []

    struct Condition {
        var path: String
        var op: String
        var value: SourceNode
        var location: SourcePosition?
        var at: String
    }

    struct State {
        var counter: String
        var window: Int
        var increment: Double
        var incrementFrom: ValuePath?
    }

    struct Rule {
        var name: String
        var deny: Bool
        var reason: String?
        var conditions: [Condition] = []
        var state: State?
        var rateLimit: (Int, Int)?
        var path: String
    }

    mutating func convert(_ root: SourceNode) -> InterceptImporter.Result? {
        guard
            let fields = decoder.members(
                of: root, at: "", allowed: ["version", "description", "default", "hide", "tools"], required: ["version", "tools"])
        else { return nil }
        var policy = Policy(defaultAction: .allow)
        if let member = fields["version"], decoder.string(member.value, at: "version") != "1" {
            decoder.report(.invalidVersion, at: member.value.location, "version", "Intercept policies have version \"1\"", allowed: "\"1\"")
        }
        if let member = fields["description"] { policy.description = decoder.string(member.value, at: "description") }
        if let member = fields["default"] {
            policy.defaultAction = decoder.enumeration(member.value, at: "default", as: Policy.DefaultAction.self) ?? .allow
        }
        if let member = fields["hide"] {
            for (index, item) in (decoder.list(member.value, at: "hide") ?? []).enumerated() {
                if let name = decoder.string(item, at: FieldPath.index("hide", index)), !policy.hide.contains(name) { policy.hide.append(name) }
            }
        }
        guard let toolsNode = fields["tools"]?.value, case .mapping(let tools) = toolsNode.value else {
            if let node = fields["tools"]?.value {
                decoder.report(.wrongType, at: node.location, "tools", "expected a mapping of tool names to rules")
            }
            return nil
        }
        var rulesByTool: [(String, [Rule])] = []
        for member in tools {
            let toolPath = FieldPath.key("tools", member.key)
            let toolFields = decoder.members(of: member.value, at: toolPath, allowed: ["rules"], required: [])
            var rules: [Rule] = []
            if let rulesNode = toolFields?["rules"]?.value {
                let rulesPath = FieldPath.key(toolPath, "rules")
                for (index, item) in (decoder.list(rulesNode, at: rulesPath) ?? []).enumerated() {
                    if let rule = readRule(item, at: FieldPath.index(rulesPath, index)) { rules.append(rule) }
                }
            }
            rulesByTool.append((member.key, rules))
        }
        let wildcard = rulesByTool.first { $0.0 == "*" }?.1 ?? []
        let wildcardEntry = entry(for: "*", rules: wildcard, scope: "_global")
        for (tool, rules) in rulesByTool where tool != "*" {
            var converted = entry(for: tool, rules: rules, scope: tool)
            converted.rules += wildcardEntry.rules
            converted.limits += wildcardEntry.limits
            policy.tools[tool] = converted
        }
        if !rulesByTool.contains(where: { $0.0 == "*" }) {
            // Nothing to add.
        } else if policy.defaultAction == .allow {
            policy.tools["*"] = wildcardEntry
        } else {
            notes.append("the \"*\" rules apply to the listed tools only, since the default is deny (as in Intercept)")
        }
        return InterceptImporter.Result(policy: policy, notes: notes)
    }

    private mutating func readRule(_ node: SourceNode, at path: String) -> Rule? {
        let allowed = ["name", "action", "conditions", "on_deny", "state", "rate_limit"]
        guard let fields = decoder.members(of: node, at: path, allowed: allowed, required: ["name"]) else { return nil }
        var rule = Rule(name: fields["name"].flatMap { decoder.string($0.value, at: FieldPath.key(path, "name")) } ?? "", deny: false, path: path)
        if let member = fields["action"], let action = decoder.string(member.value, at: FieldPath.key(path, "action")) {
            switch action {
            case "deny": rule.deny = true
            case "evaluate": break
            default:
                decoder.report(
                    .invalidValue, at: member.value.location, FieldPath.key(path, "action"), "`\(action)` is not an Intercept action",
                    allowed: "evaluate, deny", suggestion: EditDistance.suggestion(for: action, among: ["evaluate", "deny"]))
            }
        }
        if let member = fields["on_deny"] { rule.reason = decoder.string(member.value, at: FieldPath.key(path, "on_deny")) }
        if let member = fields["conditions"] {
            let listPath = FieldPath.key(path, "conditions")
            for (index, item) in (decoder.list(member.value, at: listPath) ?? []).enumerated() {
                let itemPath = FieldPath.index(listPath, index)
                guard let condition = decoder.members(of: item, at: itemPath, allowed: ["path", "op", "value"], required: ["path", "op"]),
                    let pathNode = condition["path"], let text = decoder.string(pathNode.value, at: FieldPath.key(itemPath, "path")),
                    let opNode = condition["op"], let op = decoder.string(opNode.value, at: FieldPath.key(itemPath, "op"))
                else { continue }
                let value = condition["value"]?.value ?? SourceNode(.null, at: item.location)
                rule.conditions.append(Condition(path: text, op: op, value: value, location: pathNode.value.location, at: itemPath))
            }
        }
        if let member = fields["state"] {
            let statePath = FieldPath.key(path, "state")
            if let state = decoder.members(
                of: member.value, at: statePath, allowed: ["counter", "window", "increment", "increment_from"],
                required: ["counter", "window"])
            {
                let counter = state["counter"].flatMap { decoder.string($0.value, at: FieldPath.key(statePath, "counter")) } ?? ""
                let window = state["window"].flatMap { decoder.duration($0.value, at: FieldPath.key(statePath, "window")) } ?? 60
                var converted = State(counter: counter, window: window, increment: 1)
                if let increment = state["increment"] {
                    if case .number(let value) = increment.value.value, value.isFinite, value > 0 {
                        converted.increment = value
                    } else {
                        decoder.report(
                            .invalidNumber, at: increment.value.location, FieldPath.key(statePath, "increment"),
                            "`increment` must be a positive number", allowed: "a number greater than 0")
                    }
                }
                if let from = state["increment_from"], let text = decoder.string(from.value, at: FieldPath.key(statePath, "increment_from")) {
                    if let valuePath = ValuePath(text), valuePath.root == .args, !valuePath.components.isEmpty {
                        converted.incrementFrom = valuePath
                    } else {
                        decoder.report(
                            .invalidPath, at: from.value.location, FieldPath.key(statePath, "increment_from"),
                            "`increment_from` must start with \"args.\", found `\(text)`", allowed: "args.<field>")
                    }
                }
                rule.state = converted
            }
        }
        if let member = fields["rate_limit"], let text = decoder.string(member.value, at: FieldPath.key(path, "rate_limit")) {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            let windows = ["minute": 60, "hour": 3600, "day": 86400]
            if parts.count == 2, let count = Int(parts[0]), count > 0, let window = windows[String(parts[1])] {
                rule.rateLimit = (count, window)
            } else {
                decoder.report(
                    .invalidValue, at: member.value.location, FieldPath.key(path, "rate_limit"), "`\(text)` is not a rate limit",
                    allowed: "<count>/<window>, such as 5/hour (window: minute, hour or day)")
            }
            if rule.state != nil || !rule.conditions.isEmpty {
                decoder.report(
                    .unsupportedImport, at: member.keyLocation, FieldPath.key(path, "rate_limit"),
                    "`rate_limit` cannot be combined with `conditions` or `state` (Intercept refuses it too)",
                    allowed: "separate rules, or conditions and state without `rate_limit`")
            }
        }
        if rule.deny && (!rule.conditions.isEmpty || rule.rateLimit != nil) {
            decoder.report(
                .unsupportedImport, at: node.location, path, "a deny rule cannot have conditions or a rate_limit (Intercept refuses it too)",
                allowed: "action: deny alone, or action: evaluate with conditions")
        }
        if !rule.deny && rule.conditions.isEmpty && fields["rate_limit"] == nil {
            decoder.report(
                .unsupportedImport, at: node.location, path, "an evaluate rule needs at least one condition (Intercept refuses it too)",
                allowed: "conditions, a rate_limit, or action: deny")
        }
        return rule
    }

    /// A Tollgate entry for one Intercept tool; `scope` is how its counters are named (`<tool>` or `_global`).
    private mutating func entry(for tool: String, rules: [Rule], scope: String) -> ToolPolicy {
        var entry = ToolPolicy(action: .allow)
        let states = Dictionary(rules.compactMap { rule in rule.state.map { ($0.counter, $0) } }, uniquingKeysWith: { first, _ in first })
        var limited: Set<String> = []
        for rule in rules {
            let reason = rule.reason.flatMap { $0.isEmpty ? nil : $0 } ?? "denied by the rule \"\(rule.name)\""
            if rule.deny {
                entry.rules.append(PolicyRule(name: rule.name, action: .deny, reason: reason))
                continue
            }
            if let (count, window) = rule.rateLimit {
                let name = counterName(scope, "_rate_\(PolicyDuration.format(window))")
                entry.limits.append(PolicyLimit(counter: name, window: window, max: Double(count), scope: .global))
                if rule.reason != nil { notes.append("\(rule.path): over the rate limit the agent gets Tollgate's limit message, not `on_deny`") }
                continue
            }
            var argumentConditions: [PolicyCondition] = []
            for condition in rule.conditions {
                if condition.path.hasPrefix("state.") {
                    if let limit = stateLimit(condition, scope: scope, states: states) {
                        if limited.insert(limit.counter).inserted { entry.limits.append(limit) }
                        if rule.reason != nil {
                            notes.append("\(rule.path): over the counter's limit the agent gets Tollgate's limit message, not `on_deny`")
                        }
                    }
                    continue
                }
                guard let path = ValuePath(condition.path), path.root == .args, !path.components.isEmpty else {
                    decoder.report(
                        .invalidPath, at: condition.location, FieldPath.key(condition.at, "path"),
                        "path must start with \"args.\" or \"state.\", found `\(condition.path)`", allowed: "args.<field> or state.<tool>.<counter>")
                    continue
                }
                guard let op = PolicyCondition.Operator(rawValue: condition.op) else {
                    decoder.report(
                        .invalidValue, at: condition.location, FieldPath.key(condition.at, "op"), "unknown operator `\(condition.op)`",
                        allowed: PolicyCondition.Operator.allCases.map(\.rawValue).joined(separator: ", "),
                        suggestion: EditDistance.suggestion(for: condition.op, among: PolicyCondition.Operator.allCases.map(\.rawValue)))
                    continue
                }
                if op == .exists { notes.append("\(condition.at): `exists` treats a null argument as present; Intercept treats it as absent") }
                argumentConditions.append(PolicyCondition(path: path, op: op, value: condition.value.jsonValue))
            }
            if !argumentConditions.isEmpty {
                entry.rules.append(PolicyRule(name: rule.name, unless: argumentConditions, action: .deny, reason: reason))
            }
        }
        for state in states.values.sorted(by: { $0.counter < $1.counter }) where !limited.contains(counterName(scope, state.counter)) {
            notes.append("tools.\(tool): the counter `\(state.counter)` is never compared with a limit, so it is not imported")
        }
        return entry
    }

    private mutating func stateLimit(_ condition: Condition, scope: String, states: [String: State]) -> PolicyLimit? {
        let parts = condition.path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts[1] == scope, let state = states[parts[2]] else {
            decoder.report(
                .unsupportedImport, at: condition.location, FieldPath.key(condition.at, "path"),
                "`\(condition.path)` names no counter defined by a `state` block of this tool",
                allowed: "state.\(scope).<counter> with a matching `state: {counter: <counter>}` in one of this tool's rules")
            return nil
        }
        guard case .number(let bound) = condition.value.value, bound.isFinite, bound > 0, condition.op == "lte" || condition.op == "lt" else {
            decoder.report(
                .unsupportedImport, at: condition.location, FieldPath.key(condition.at, "op"),
                "only `lte` and `lt` with a positive number can be imported as a limit on a counter",
                allowed: "op: lte or lt, value: a number greater than 0")
            return nil
        }
        var maximum = bound
        if condition.op == "lt" {
            let integral = state.incrementFrom == nil && state.increment == state.increment.rounded() && bound == bound.rounded()
            maximum = integral ? bound - 1 : bound.nextDown
            if maximum <= 0 {
                decoder.report(
                    .unsupportedImport, at: condition.location, FieldPath.key(condition.at, "value"),
                    "`lt \(CanonicalNumber.format(bound))` allows no call",
                    allowed: "a larger bound, or action: deny")
                return nil
            }
        }
        return PolicyLimit(
            counter: counterName(scope, state.counter),
            window: state.window,
            max: maximum,
            scope: .global,
            increment: state.incrementFrom == nil ? state.increment : 1,
            incrementFrom: state.incrementFrom
        )
    }

    /// `<scope>.<counter>` with characters a counter name cannot hold replaced by `_`.
    private func counterName(_ scope: String, _ counter: String) -> String {
        let raw = "\(scope).\(counter)"
        let cleaned = String(
            String.UnicodeScalarView(
                raw.unicodeScalars.map { scalar in
                    scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "_-.:".unicodeScalars.contains(scalar))
                        ? scalar : "_"
                }))
        return String(cleaned.prefix(128))
    }
}
