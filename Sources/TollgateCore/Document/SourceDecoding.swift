/// What the shared helpers need from a decoder that turns ``SourceNode``s into a model: the file name for messages,
/// the diagnostics collected so far, and help for required fields. ``PolicyDecoder`` and the gateway configuration's
/// decoder both read located JSON or YAML this way, so their errors look alike.
protocol SourceDecoding {
    var file: String { get }
    var diagnostics: [SourceDiagnostic] { get set }
    /// What to write for a required field that is missing, by key.
    static var requiredFieldHelp: [String: String] { get }
}

extension SourceDecoding {
    mutating func report(
        _ code: SourceDiagnostic.Code,
        at location: SourcePosition?,
        _ path: String,
        _ message: String,
        allowed: String? = nil,
        suggestion: String? = nil
    ) {
        diagnostics.append(
            SourceDiagnostic(
                code: code,
                file: file,
                location: location,
                path: path,
                message: message,
                allowed: allowed,
                suggestion: suggestion
            )
        )
    }

    /// A key as messages and paths show it: shortened when it is long, so a hostile key cannot make a huge message.
    static func shortened(_ key: String) -> String {
        key.count > 64 ? String(key.prefix(61)) + "..." : key
    }

    /// The members of a mapping by key, after reporting a wrong type, duplicate keys, unknown keys (with a suggestion)
    /// and missing required keys. `nil` when the node is not a mapping.
    mutating func members(
        of node: SourceNode,
        at path: String,
        allowed: [String],
        required: [String],
        unknownCode: SourceDiagnostic.Code = .unknownKey
    ) -> [String: SourceNode.Member]? {
        guard case .mapping(let items) = node.value else {
            report(
                .wrongType,
                at: node.location,
                path.isEmpty ? "" : path,
                "expected a mapping, found \(node.kindDescription)",
                allowed: "a mapping with the keys " + allowed.joined(separator: ", ")
            )
            return nil
        }
        var result: [String: SourceNode.Member] = [:]
        for member in items {
            let key = Self.shortened(member.key)
            let memberPath = FieldPath.key(path, key)
            guard allowed.contains(member.key) else {
                report(
                    unknownCode,
                    at: member.keyLocation,
                    memberPath,
                    unknownCode == .unknownKey ? "unknown key `\(key)`" : "`\(key)` is not one of the allowed keys",
                    allowed: allowed.joined(separator: ", "),
                    suggestion: EditDistance.suggestion(for: member.key, among: allowed)
                )
                continue
            }
            guard result[member.key] == nil else {
                report(.duplicateKey, at: member.keyLocation, memberPath, "the key `\(member.key)` appears twice; only the first counts")
                continue
            }
            result[member.key] = member
        }
        for key in required where result[key] == nil {
            report(
                .missingField,
                at: node.location,
                FieldPath.key(path, key),
                "the required field `\(key)` is missing",
                allowed: Self.requiredFieldHelp[key]
            )
        }
        return result
    }

    mutating func string(_ node: SourceNode, at path: String) -> String? {
        if case .string(let value) = node.value { return value }
        report(.wrongType, at: node.location, path, "expected a string, found \(node.kindDescription) (\(node.shortDescription))")
        return nil
    }

    mutating func list(_ node: SourceNode, at path: String) -> [SourceNode]? {
        if case .sequence(let items) = node.value { return items }
        report(.wrongType, at: node.location, path, "expected a list, found \(node.kindDescription)", allowed: "a list (`- item` lines or [a, b])")
        return nil
    }

    /// A value of a string enumeration, with a suggestion for a near miss (`minuet` -> `minute`).
    mutating func enumeration<Value: RawRepresentable & CaseIterable>(
        _ node: SourceNode,
        at path: String,
        as type: Value.Type
    ) -> Value? where Value.RawValue == String {
        let allowed = Value.allCases.map(\.rawValue)
        guard case .string(let text) = node.value else {
            report(
                .wrongType, at: node.location, path, "expected one of the words below, found \(node.kindDescription)",
                allowed: allowed.joined(separator: ", "))
            return nil
        }
        if let value = Value(rawValue: text) { return value }
        report(
            .invalidValue,
            at: node.location,
            path,
            "\(node.shortDescription) is not allowed here",
            allowed: allowed.joined(separator: ", "),
            suggestion: EditDistance.suggestion(for: text, among: allowed)
        )
        return nil
    }

    /// A duration in seconds: `minute`, `90s`, `15m`, or a number of seconds.
    mutating func duration(_ node: SourceNode, at path: String) -> Int? {
        let allowed = "second, minute, hour, day, a count and a unit (90s, 15m, 2h, 1d), or a whole number of seconds"
        switch node.value {
        case .string(let text):
            if let seconds = PolicyDuration.parse(text) { return seconds }
            report(
                .invalidDuration,
                at: node.location,
                path,
                "\(node.shortDescription) is not a duration",
                allowed: allowed,
                suggestion: EditDistance.suggestion(for: text, among: PolicyDuration.names.map(\.0))
            )
        case .number(let value) where value.isFinite && value == value.rounded() && value > 0 && value <= Double(PolicyDuration.maxSeconds):
            return Int(value)
        default:
            report(.invalidDuration, at: node.location, path, "\(node.shortDescription) is not a duration", allowed: allowed)
        }
        return nil
    }
}
