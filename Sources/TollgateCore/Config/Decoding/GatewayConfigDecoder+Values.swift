extension GatewayConfigDecoder {
    /// The node with the `${...}` references in its string replaced, or `nil` after reporting a reference that cannot
    /// be; other kinds of value come back unchanged. `substituted` says whether the string held a reference.
    mutating func resolved(_ node: SourceNode, at path: String) -> (node: SourceNode, substituted: Bool)? {
        guard case .string(let text) = node.value else { return (node, false) }
        let substitution = EnvironmentSubstitution(text, environment: environment)
        var reported: Set<String> = []
        for problem in substitution.problems {
            switch problem {
            case .undefined(let name):
                guard reported.insert(name).inserted else { continue }
                let shown = name.count > 60 ? String(name.prefix(57)) + "..." : name
                report(
                    .invalidValue,
                    at: node.location,
                    path,
                    "`${\(shown)}` refers to the environment variable `\(shown)`, which is not set",
                    allowed: "set \(shown) in the gateway's environment, give a default (${\(shown):-value}), or write $${ for a literal ${"
                )
            case .syntax(let reference, let reason):
                report(
                    .syntax,
                    at: node.location,
                    path,
                    "\(AddressSyntax.quoted(reference)) is not a valid reference: \(reason)",
                    allowed: "${NAME} or ${NAME:-default}, NAME being a letter or _ then letters, digits or _; $${ for a literal ${"
                )
            }
        }
        guard substitution.problems.isEmpty else { return nil }
        if substitution.substituted {
            guard !substitutionBudgetExceeded else { return nil }
            substitutedBytes += substitution.value.utf8.count
            if substitutedBytes > substitutionBudget {
                substitutionBudgetExceeded = true
                report(
                    .invalidValue,
                    at: node.location,
                    path,
                    "environment variables make the substituted values larger than \(substitutionBudget) bytes in all",
                    allowed: "shorter values; pass large data to servers as files"
                )
                return nil
            }
        }
        return (SourceNode(.string(substitution.value), at: node.location), substitution.substituted)
    }

    /// A string field's value after substitution. A value of another kind is reported with `allowed`, or with a hint to
    /// quote it when it is a number or a boolean.
    mutating func text(_ node: SourceNode, at path: String, allowed: String? = nil) -> String? {
        guard case .string = node.value else {
            let hint: String
            switch node.value {
            case .number, .bool: hint = "a string; quote numbers and words like true, as in \"\(node.shortDescription)\""
            default: hint = "a string"
            }
            report(.wrongType, at: node.location, path, "expected a string, found \(Self.found(node))", allowed: allowed ?? hint)
            return nil
        }
        guard let (resolved, _) = resolved(node, at: path), case .string(let value) = resolved.value else { return nil }
        return value
    }

    /// The kind of a value, and the value itself when it is short: "a number (8420)", "a list".
    static func found(_ node: SourceNode) -> String {
        switch node.value {
        case .sequence, .mapping, .null: node.kindDescription
        default: "\(node.kindDescription) (\(node.shortDescription))"
        }
    }

    /// A word from a fixed set, after substitution, with a suggestion for a near miss.
    mutating func word<Value: RawRepresentable & CaseIterable>(_ node: SourceNode, at path: String, as type: Value.Type) -> Value?
    where Value.RawValue == String {
        guard let (resolved, _) = resolved(node, at: path) else { return nil }
        return enumeration(resolved, at: path, as: type)
    }

    /// The node for a numeric field: numbers as they are, and a string that came from a substitution and holds a
    /// whole number as that number (`max_sessions: ${MAX_SESSIONS:-1000}`).
    mutating func numeric(_ node: SourceNode, at path: String) -> SourceNode? {
        guard let (resolved, substituted) = resolved(node, at: path) else { return nil }
        if substituted, case .string(let text) = resolved.value, text.utf8.count <= 18, let number = Int(text) {
            return SourceNode(.number(Double(number)), at: node.location)
        }
        return resolved
    }

    /// A whole number in `range`.
    mutating func integer(_ node: SourceNode, at path: String, in range: ClosedRange<Int>, unit: String) -> Int? {
        guard let resolved = numeric(node, at: path) else { return nil }
        let allowed = "a whole number of \(unit) from \(range.lowerBound) to \(range.upperBound)"
        switch resolved.value {
        case .number(let value):
            if value.isFinite, value == value.rounded(), value >= Double(range.lowerBound), value <= Double(range.upperBound) {
                return Int(value)
            }
            report(.invalidNumber, at: node.location, path, "\(resolved.shortDescription) is out of range", allowed: allowed)
        default:
            report(.wrongType, at: node.location, path, "expected a number, found \(Self.found(resolved))", allowed: allowed)
        }
        return nil
    }

    /// A file path, made absolute against the configuration's directory.
    mutating func path(_ node: SourceNode, at path: String) -> String? {
        guard let text = text(node, at: path) else { return nil }
        if text.isEmpty {
            report(.invalidValue, at: node.location, path, "the path is empty", allowed: "a file or directory path")
            return nil
        }
        if text.unicodeScalars.contains("\0") {
            report(.invalidValue, at: node.location, path, "the path contains a NUL character", allowed: "a file or directory path")
            return nil
        }
        return ConfigPath.resolve(text, against: directory)
    }

    /// Whether `name` follows the rule for server names, agent ids and grants: `[a-z0-9][a-z0-9_-]{0,62}`.
    static func isName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func isLowerOrDigit(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        return isLowerOrDigit(bytes[0]) && bytes.allSatisfy { isLowerOrDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// Reports `name` if it breaks the naming rule; `what` names the thing for the message ("server name").
    mutating func checkName(_ name: String, at location: SourcePosition?, _ path: String, what: String) -> Bool {
        guard !Self.isName(name) else { return true }
        let lower = name.lowercased()
        report(
            .invalidName,
            at: location,
            path,
            name.isEmpty ? "the \(what) is empty" : "\(AddressSyntax.quoted(name)) is not a valid \(what)",
            allowed: "1 to 63 of a-z 0-9 _ -, starting with a letter or digit, such as stripe or ci-bot",
            suggestion: Self.isName(lower) ? lower : nil
        )
        return false
    }

    /// A list entry's name (`id` of agents and reviewers, `name` of webhooks): checked against the naming rule and
    /// against the names before it (`seen`: name → the entry that has it). `nil` after reporting why not.
    mutating func uniqueName(_ node: SourceNode, at path: String, entry: String, what: String, seen: inout [String: String]) -> String? {
        guard let text = text(node, at: path), checkName(text, at: node.location, path, what: what) else { return nil }
        if let first = seen[text] {
            report(
                .duplicateEntry, at: node.location, path, "the \(what) `\(text)` is already used by \(first)",
                allowed: "a different \(what) for each entry")
            return nil
        }
        seen[text] = entry
        return text
    }

    /// An http or https URL with a host (an upstream's, a webhook's); `nil` after reporting why not. `example` is shown
    /// in the messages.
    mutating func httpURL(_ node: SourceNode, at path: String, example: String) -> String? {
        guard let url = text(node, at: path, allowed: "an http or https URL, such as \"\(example)\"") else { return nil }
        if let problem = AddressSyntax.urlProblem(url) {
            report(
                .invalidValue, at: node.location, path, problem.message, allowed: "an http or https URL with a host, such as \(example)",
                suggestion: problem.suggestion)
            return nil
        }
        return url
    }
}
