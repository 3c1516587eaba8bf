/// Turns a ``SourceNode`` tree into a ``Policy``, collecting every problem instead of stopping at the first.
///
/// Each check reports the field's path, the location of the offending key or value, and what is allowed there.
struct PolicyDecoder: SourceDecoding {
    let file: String
    var diagnostics: [SourceDiagnostic] = []
    /// The first definition of each counter, to check later ones agree with it.
    private(set) var counterTable: [String: (limit: PolicyLimit, path: String)] = [:]

    init(file: String) {
        self.file = file
    }

    static let rootKeys = [
        "version", "description", "default", "hide", "limits", "categories", "tools", "on_definition_change", "first_listing",
    ]
    static let entryKeys = ["action", "reason", "approval", "limits", "rules"]
    static let ruleKeys = ["name", "when", "unless", "action", "reason", "approval", "limits"]
    static let limitKeys = ["counter", "window", "max", "scope", "algorithm", "increment", "increment_from"]
    static let conditionKeys = ["path", "op", "value"]
    static let approvalKeys = ["timeout", "hold", "quorum", "reviewers"]

    mutating func recordCounter(_ limit: PolicyLimit, at path: String) {
        counterTable[limit.counter] = (limit, path)
    }

    // MARK: The document

    mutating func decodePolicy(_ root: SourceNode) -> Policy? {
        guard let fields = members(of: root, at: "", allowed: Self.rootKeys, required: ["version"]) else { return nil }
        var policy = Policy()
        if let member = fields["version"] {
            switch member.value.value {
            case .string("1"): policy.version = "1"
            case .number(1): policy.version = "1"
            default:
                report(
                    .invalidVersion,
                    at: member.value.location,
                    "version",
                    "the version must be \"1\", found \(member.value.shortDescription)",
                    allowed: "\"1\""
                )
            }
        }
        if let member = fields["description"] { policy.description = string(member.value, at: "description") }
        if let member = fields["default"],
            let value = enumeration(member.value, at: "default", as: Policy.DefaultAction.self)
        {
            policy.defaultAction = value
        }
        if let member = fields["hide"] { policy.hide = decodeHide(member.value) }
        if let member = fields["limits"] { policy.limits = decodeLimits(member.value, at: "limits") }
        if let member = fields["categories"] { policy.categories = decodeCategories(member.value) }
        if let member = fields["tools"] { policy.tools = decodeTools(member.value) }
        if let member = fields["on_definition_change"],
            let value = enumeration(member.value, at: "on_definition_change", as: Policy.DefinitionChangeAction.self)
        {
            policy.onDefinitionChange = value
        }
        if let member = fields["first_listing"], let value = enumeration(member.value, at: "first_listing", as: Policy.FirstListing.self) {
            policy.firstListing = value
        }
        return policy
    }

    private mutating func decodeHide(_ node: SourceNode) -> [String] {
        guard let items = list(node, at: "hide") else { return [] }
        var names: [String] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = FieldPath.index("hide", index)
            guard let name = string(item, at: path), checkToolKey(name, at: item.location, path) else { continue }
            if let first = seen[name] {
                report(.duplicateEntry, at: item.location, path, "`\(name)` is already listed at hide[\(first)]")
                continue
            }
            seen[name] = index
            names.append(name)
        }
        return names
    }

    private mutating func decodeCategories(_ node: SourceNode) -> [RiskCategory: ToolPolicy] {
        let allowed = RiskCategory.allCases.map(\.rawValue)
        guard let fields = members(of: node, at: "categories", allowed: allowed, required: [], unknownCode: .invalidValue)
        else { return [:] }
        var result: [RiskCategory: ToolPolicy] = [:]
        for category in RiskCategory.allCases {
            guard let member = fields[category.rawValue] else { continue }
            let key = category.rawValue
            if let entry = decodeEntry(member.value, at: FieldPath.key("categories", key)) { result[category] = entry }
        }
        return result
    }

    private mutating func decodeTools(_ node: SourceNode) -> [String: ToolPolicy] {
        guard case .mapping(let items) = node.value else {
            report(.wrongType, at: node.location, "tools", "expected a mapping of tool names to entries, found \(node.kindDescription)")
            return [:]
        }
        var result: [String: ToolPolicy] = [:]
        var seen: Set<String> = []
        for member in items {
            let path = FieldPath.key("tools", member.key)
            guard seen.insert(member.key).inserted else {
                report(.duplicateKey, at: member.keyLocation, path, "the tool `\(member.key)` is listed twice")
                continue
            }
            guard checkToolKey(member.key, at: member.keyLocation, path) else { continue }
            if let entry = decodeEntry(member.value, at: path) { result[member.key] = entry }
        }
        return result
    }

    /// Tool names and patterns: 1 to 256 characters, no spaces or control characters.
    private mutating func checkToolKey(_ key: String, at location: SourcePosition?, _ path: String) -> Bool {
        let bad = key.unicodeScalars.first { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }
        if key.isEmpty || key.unicodeScalars.count > 256 || bad != nil {
            report(
                .invalidPattern,
                at: location,
                path,
                key.isEmpty ? "a tool name cannot be empty" : "`\(key)` is not a tool name or pattern",
                allowed: "1 to 256 characters without spaces; `*` matches any run of characters, `?` one character"
            )
            return false
        }
        return true
    }

    // MARK: Entries and rules

    /// A tool or category entry: a mapping, or just an action (`read_file: allow`).
    mutating func decodeEntry(_ node: SourceNode, at path: String) -> ToolPolicy? {
        if case .string = node.value {
            guard let action = enumeration(node, at: path, as: PolicyAction.self) else { return nil }
            return ToolPolicy(action: action)
        }
        if case .null = node.value { return ToolPolicy() }
        guard let fields = members(of: node, at: path, allowed: Self.entryKeys, required: []) else { return nil }
        var entry = ToolPolicy()
        if let member = fields["action"] {
            entry.action = enumeration(member.value, at: FieldPath.key(path, "action"), as: PolicyAction.self)
        }
        if let member = fields["reason"] { entry.reason = string(member.value, at: FieldPath.key(path, "reason")) }
        if let member = fields["approval"] {
            entry.approval = decodeApproval(member, at: FieldPath.key(path, "approval"), action: entry.action)
        }
        if let member = fields["limits"] { entry.limits = decodeLimits(member.value, at: FieldPath.key(path, "limits")) }
        if let member = fields["rules"] {
            let rulesPath = FieldPath.key(path, "rules")
            for (index, item) in (list(member.value, at: rulesPath) ?? []).enumerated() {
                if let rule = decodeRule(item, at: FieldPath.index(rulesPath, index)) { entry.rules.append(rule) }
            }
        }
        return entry
    }

    private mutating func decodeRule(_ node: SourceNode, at path: String) -> PolicyRule? {
        guard let fields = members(of: node, at: path, allowed: Self.ruleKeys, required: []) else { return nil }
        var rule = PolicyRule()
        if let member = fields["name"] { rule.name = string(member.value, at: FieldPath.key(path, "name")) }
        for key in ["when", "unless"] {
            guard let member = fields[key] else { continue }
            let listPath = FieldPath.key(path, key)
            var conditions: [PolicyCondition] = []
            for (index, item) in (list(member.value, at: listPath) ?? []).enumerated() {
                if let condition = decodeCondition(item, at: FieldPath.index(listPath, index)) { conditions.append(condition) }
            }
            if key == "when" { rule.when = conditions } else { rule.unless = conditions }
        }
        if let member = fields["action"] {
            rule.action = enumeration(member.value, at: FieldPath.key(path, "action"), as: PolicyAction.self)
        }
        if let member = fields["reason"] { rule.reason = string(member.value, at: FieldPath.key(path, "reason")) }
        if let member = fields["approval"] {
            rule.approval = decodeApproval(member, at: FieldPath.key(path, "approval"), action: rule.action)
        }
        if let member = fields["limits"] { rule.limits = decodeLimits(member.value, at: FieldPath.key(path, "limits")) }
        if fields["action"] == nil && fields["limits"] == nil {
            report(
                .emptyRule,
                at: node.location,
                path,
                "the rule has neither an `action` nor `limits`, so it would change nothing",
                allowed: "an `action` (allow, deny, require_approval), `limits`, or both"
            )
        }
        return rule
    }

    private mutating func decodeApproval(_ member: SourceNode.Member, at path: String, action: PolicyAction?) -> ApprovalOptions? {
        if action != .requireApproval {
            report(
                .misplacedField,
                at: member.keyLocation,
                path,
                "`approval` options only apply when `action` is `require_approval`",
                allowed: "remove `approval`, or set `action: require_approval`"
            )
        }
        guard let fields = members(of: member.value, at: path, allowed: Self.approvalKeys, required: []) else { return nil }
        var options = ApprovalOptions()
        if let item = fields["timeout"], let seconds = duration(item.value, at: FieldPath.key(path, "timeout")) {
            options.timeout = seconds
        }
        if let item = fields["hold"], let seconds = duration(item.value, at: FieldPath.key(path, "hold")) {
            options.hold = seconds
        }
        if let item = fields["quorum"] {
            let quorumPath = FieldPath.key(path, "quorum")
            if case .number(let value) = item.value.value, value == value.rounded(), value >= 1, value <= 100 {
                options.quorum = Int(value)
            } else {
                report(
                    .invalidNumber,
                    at: item.value.location,
                    quorumPath,
                    "the quorum must be a whole number of approvers, found \(item.value.shortDescription)",
                    allowed: "a whole number from 1 to 100"
                )
            }
        }
        if let item = fields["reviewers"] {
            let reviewersPath = FieldPath.key(path, "reviewers")
            var seen: Set<String> = []
            for (index, reviewer) in (list(item.value, at: reviewersPath) ?? []).enumerated() {
                let reviewerPath = FieldPath.index(reviewersPath, index)
                guard let name = string(reviewer, at: reviewerPath) else { continue }
                if name.isEmpty {
                    report(.invalidName, at: reviewer.location, reviewerPath, "a reviewer name cannot be empty")
                } else if !seen.insert(name).inserted {
                    report(.duplicateEntry, at: reviewer.location, reviewerPath, "the reviewer `\(name)` is listed twice")
                } else {
                    options.reviewers.append(name)
                }
            }
            if !options.reviewers.isEmpty && options.quorum > options.reviewers.count {
                report(
                    .invalidQuorum,
                    at: fields["quorum"]?.value.location ?? item.value.location,
                    FieldPath.key(path, "quorum"),
                    "a quorum of \(options.quorum) can never be reached by \(options.reviewers.count) reviewer(s)",
                    allowed: "a quorum from 1 to \(options.reviewers.count), or more reviewers"
                )
            }
        }
        if options.hold > options.timeout {
            report(
                .holdExceedsTimeout,
                at: fields["hold"]?.value.location ?? member.value.location,
                FieldPath.key(path, "hold"),
                "the call would be held (\(PolicyDuration.human(options.hold))) past the request's expiry "
                    + "(\(PolicyDuration.human(options.timeout)))",
                allowed: "a hold no longer than the timeout"
            )
        }
        return options
    }
}
