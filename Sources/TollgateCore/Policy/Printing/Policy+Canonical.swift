extension Policy {
    /// The policy as an ordered tree: the canonical form that `fmt` prints and the content hash covers.
    var canonicalNode: CanonicalNode {
        var root: [(String, CanonicalNode)] = [("version", .string(version))]
        if let description { root.append(("description", .string(description))) }
        root.append(("default", .string(defaultAction.rawValue)))
        if !hide.isEmpty { root.append(("hide", .list(hide.map(CanonicalNode.string), flow: false))) }
        if !limits.isEmpty { root.append(("limits", Self.node(limits))) }
        if !categories.isEmpty {
            let members = RiskCategory.allCases.compactMap { category in categories[category].map { (category.rawValue, $0.canonicalNode) } }
            root.append(("categories", .map(members, flow: false)))
        }
        if !tools.isEmpty {
            let keys = tools.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) { $0.value < $1.value } }
            root.append(("tools", .map(keys.map { ($0, tools[$0]!.canonicalNode) }, flow: false)))
        }
        // Printed only when not the default, so a policy that does not name them keeps its content hash.
        if onDefinitionChange != .hold { root.append(("on_definition_change", .string(onDefinitionChange.rawValue))) }
        if firstListing != .accept { root.append(("first_listing", .string(firstListing.rawValue))) }
        return .map(root, flow: false)
    }

    static func node(_ limits: [PolicyLimit]) -> CanonicalNode {
        .list(limits.map(\.canonicalNode), flow: false)
    }

    /// The canonical YAML text (`tollgate policy fmt`).
    public var canonicalYAML: String { PolicyPrinter.yaml(canonicalNode) }

    /// The canonical JSON text, indented.
    public var canonicalJSON: String { PolicyPrinter.json(canonicalNode, pretty: true) }
}

extension ToolPolicy {
    var canonicalNode: CanonicalNode {
        if let action, reason == nil, approval == nil, limits.isEmpty, rules.isEmpty { return .string(action.rawValue) }
        var members: [(String, CanonicalNode)] = []
        if let action { members.append(("action", .string(action.rawValue))) }
        if let reason { members.append(("reason", .string(reason))) }
        if let approval { members.append(("approval", approval.canonicalNode)) }
        if !limits.isEmpty { members.append(("limits", Policy.node(limits))) }
        if !rules.isEmpty { members.append(("rules", .list(rules.map(\.canonicalNode), flow: false))) }
        return .map(members, flow: false)
    }
}

extension PolicyRule {
    var canonicalNode: CanonicalNode {
        var members: [(String, CanonicalNode)] = []
        if let name { members.append(("name", .string(name))) }
        if !when.isEmpty { members.append(("when", .list(when.map(\.canonicalNode), flow: false))) }
        if !unless.isEmpty { members.append(("unless", .list(unless.map(\.canonicalNode), flow: false))) }
        if let action { members.append(("action", .string(action.rawValue))) }
        if let reason { members.append(("reason", .string(reason))) }
        if let approval { members.append(("approval", approval.canonicalNode)) }
        if !limits.isEmpty { members.append(("limits", Policy.node(limits))) }
        return .map(members, flow: false)
    }
}

extension PolicyCondition {
    var canonicalNode: CanonicalNode {
        .map([("path", .string(path.description)), ("op", .string(op.rawValue)), ("value", .value(value))], flow: true)
    }
}

extension PolicyLimit {
    var canonicalNode: CanonicalNode {
        var members: [(String, CanonicalNode)] = [
            ("counter", .string(counter)),
            ("window", .string(PolicyDuration.format(window))),
            ("max", .number(max)),
            ("scope", .string(scope.rawValue)),
        ]
        if algorithm != .fixed { members.append(("algorithm", .string(algorithm.rawValue))) }
        if let incrementFrom {
            members.append(("increment_from", .string(incrementFrom.description)))
        } else if increment != 1 {
            members.append(("increment", .number(increment)))
        }
        return .map(members, flow: true)
    }
}

extension ApprovalOptions {
    var canonicalNode: CanonicalNode {
        var members: [(String, CanonicalNode)] = [
            ("timeout", .string(PolicyDuration.format(timeout))),
            ("hold", .string(PolicyDuration.format(hold))),
            ("quorum", .number(Double(quorum))),
        ]
        if !reviewers.isEmpty { members.append(("reviewers", .list(reviewers.map(CanonicalNode.string), flow: true))) }
        return .map(members, flow: true)
    }
}
