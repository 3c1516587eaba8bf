extension PolicyDecoder {
    mutating func decodeLimits(_ node: SourceNode, at path: String) -> [PolicyLimit] {
        var limits: [PolicyLimit] = []
        for (index, item) in (list(node, at: path) ?? []).enumerated() {
            if let limit = decodeLimit(item, at: FieldPath.index(path, index)) { limits.append(limit) }
        }
        return limits
    }

    private mutating func decodeLimit(_ node: SourceNode, at path: String) -> PolicyLimit? {
        guard let fields = members(of: node, at: path, allowed: Self.limitKeys, required: ["counter", "window", "max"]) else {
            return nil
        }
        var valid = true
        var counter = ""
        if let member = fields["counter"] {
            let counterPath = FieldPath.key(path, "counter")
            if let name = string(member.value, at: counterPath) {
                if Self.isCounterName(name) {
                    counter = name
                } else {
                    valid = false
                    report(
                        .invalidName,
                        at: member.value.location,
                        counterPath,
                        "`\(name)` is not a counter name",
                        allowed: "1 to 128 of the characters A-Z a-z 0-9 _ - . :"
                    )
                }
            } else {
                valid = false
            }
        } else {
            valid = false
        }
        var window = 0
        if let member = fields["window"], let seconds = duration(member.value, at: FieldPath.key(path, "window")) {
            window = seconds
        } else {
            valid = false
        }
        var maximum = 0.0
        if let member = fields["max"] {
            if case .number(let value) = member.value.value, value.isFinite, value > 0 {
                maximum = value
            } else {
                valid = false
                report(
                    .invalidNumber,
                    at: member.value.location,
                    FieldPath.key(path, "max"),
                    "`max` must be a positive number, found \(member.value.shortDescription)",
                    allowed: "a number greater than 0 (to refuse every call, use `action: deny`)"
                )
            }
        } else {
            valid = false
        }
        var limit = PolicyLimit(counter: counter, window: window, max: maximum)
        if let member = fields["scope"] {
            if let scope = enumeration(member.value, at: FieldPath.key(path, "scope"), as: PolicyLimit.Scope.self) {
                limit.scope = scope
            } else {
                valid = false
            }
        }
        if let member = fields["algorithm"] {
            if let algorithm = enumeration(member.value, at: FieldPath.key(path, "algorithm"), as: PolicyLimit.Algorithm.self) {
                limit.algorithm = algorithm
            } else {
                valid = false
            }
        }
        if let member = fields["increment"] {
            if case .number(let value) = member.value.value, value.isFinite, value > 0 {
                limit.increment = value
            } else {
                valid = false
                report(
                    .invalidNumber,
                    at: member.value.location,
                    FieldPath.key(path, "increment"),
                    "`increment` must be a positive number, found \(member.value.shortDescription)",
                    allowed: "a number greater than 0"
                )
            }
        }
        if let member = fields["increment_from"] {
            let fromPath = FieldPath.key(path, "increment_from")
            if let text = string(member.value, at: fromPath) {
                if let valuePath = ValuePath(text), valuePath.root == .args, !valuePath.components.isEmpty {
                    limit.incrementFrom = valuePath
                } else {
                    valid = false
                    report(
                        .invalidPath,
                        at: member.value.location,
                        fromPath,
                        "`increment_from` must name an argument, found `\(text)`",
                        allowed: "args.<field>, such as args.amount or args.order.total"
                    )
                }
            } else {
                valid = false
            }
            if let increment = fields["increment"] {
                report(
                    .misplacedField,
                    at: increment.keyLocation,
                    FieldPath.key(path, "increment"),
                    "`increment` and `increment_from` cannot both be set",
                    allowed: "a fixed `increment`, or `increment_from` an argument"
                )
            }
        }
        guard valid else { return nil }
        checkCounter(limit, at: path, location: fields["counter"]?.value.location)
        return limit
    }

    /// Limits naming the same counter share one count, so they must agree on what a window and a scope are.
    private mutating func checkCounter(_ limit: PolicyLimit, at path: String, location: SourcePosition?) {
        guard let (first, firstPath) = counterDefinition(limit.counter) else {
            recordCounter(limit, at: path)
            return
        }
        var differences: [String] = []
        if first.window != limit.window {
            differences.append("window \(PolicyDuration.format(limit.window)) vs \(PolicyDuration.format(first.window))")
        }
        if first.scope != limit.scope { differences.append("scope \(limit.scope.rawValue) vs \(first.scope.rawValue)") }
        if first.algorithm != limit.algorithm {
            differences.append("algorithm \(limit.algorithm.rawValue) vs \(first.algorithm.rawValue)")
        }
        if !differences.isEmpty {
            report(
                .counterConflict,
                at: location,
                FieldPath.key(path, "counter"),
                "the counter `\(limit.counter)` is also defined at \(firstPath) with a different "
                    + differences.joined(separator: ", "),
                allowed: "the same window, scope and algorithm everywhere the counter is named, or another counter name"
            )
        }
    }

    static func isCounterName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128
            && name.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "_-.:".unicodeScalars.contains(scalar))
            }
    }
}
