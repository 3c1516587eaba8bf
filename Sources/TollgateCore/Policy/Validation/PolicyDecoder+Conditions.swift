extension PolicyDecoder {
    mutating func decodeCondition(_ node: SourceNode, at path: String) -> PolicyCondition? {
        guard let fields = members(of: node, at: path, allowed: Self.conditionKeys, required: ["path", "op", "value"]) else {
            return nil
        }
        var valuePath: ValuePath?
        if let member = fields["path"] {
            let pathPath = FieldPath.key(path, "path")
            if let text = string(member.value, at: pathPath) {
                valuePath = ValuePath(text)
                if valuePath == nil {
                    let root = String(text.prefix { $0 != "." })
                    report(
                        .invalidPath,
                        at: member.value.location,
                        pathPath,
                        "`\(text)` is not a value a condition can read",
                        allowed: "args.<field>[.<field>...], agent, grant, session, server, tool",
                        suggestion: EditDistance.suggestion(for: root, among: ValuePath.Root.allCases.map(\.rawValue))
                            .map { text.replacingPrefix(root, with: $0) }
                    )
                }
            }
        }
        let op = fields["op"].flatMap { enumeration($0.value, at: FieldPath.key(path, "op"), as: PolicyCondition.Operator.self) }
        guard let valuePath, let op, let valueNode = fields["value"]?.value else { return nil }
        let valueAt = FieldPath.key(path, "value")
        let value = valueNode.jsonValue
        func wrongOperand(_ allowed: String) {
            report(
                .invalidOperand,
                at: valueNode.location,
                valueAt,
                "`\(op.rawValue)` cannot compare with \(valueNode.kindDescription) (\(valueNode.shortDescription))",
                allowed: allowed
            )
        }
        switch op {
        case .eq, .neq, .contains:
            if case .number(let number) = value, !number.isFinite {
                wrongOperand("a finite number, a string, a boolean, null, a list or a mapping"); return nil
            }
        case .in, .notIn:
            guard case .array = value else { wrongOperand("a list of values, such as [usd, eur]"); return nil }
        case .lt, .lte, .gt, .gte:
            guard case .number(let number) = value, number.isFinite else { wrongOperand("a finite number"); return nil }
        case .exists:
            guard case .bool = value else { wrongOperand("true or false"); return nil }
        case .regex:
            guard case .string(let pattern) = value else { wrongOperand("a regular expression in a string"); return nil }
            do {
                _ = try PolicyRegex(pattern)
            } catch {
                switch error {
                case .syntax(let message):
                    report(
                        .invalidRegex, at: valueNode.location, valueAt, "the regular expression `\(pattern)` is invalid: \(message)",
                        allowed: "RE2 syntax without back-references, look-around or flags (see docs/policy.md)")
                case .tooComplex(let message):
                    report(
                        .regexTooComplex, at: valueNode.location, valueAt, "the regular expression is too large: \(message)",
                        allowed: "at most \(PolicyRegex.maxPatternLength) characters and \(PolicyRegex.maxProgramSize) states")
                }
                return nil
            }
        }
        return PolicyCondition(path: valuePath, op: op, value: value)
    }
}

extension String {
    fileprivate func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        replacement + dropFirst(prefix.count)
    }
}
