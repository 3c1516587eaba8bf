/// Renders a ``CanonicalNode`` as YAML or JSON. Output is deterministic: the same node gives the same bytes.
enum PolicyPrinter {
    // MARK: JSON

    static func json(_ node: CanonicalNode, pretty: Bool) -> String {
        var output = ""
        writeJSON(node, indent: 0, pretty: pretty, to: &output)
        if pretty { output += "\n" }
        return output
    }

    private static func writeJSON(_ node: CanonicalNode, indent: Int, pretty: Bool, to output: inout String) {
        let inline = !pretty || node.isInline
        let separator = pretty ? (inline ? ", " : ",\n") : ","
        let colon = pretty ? ": " : ":"
        let inner = String(repeating: " ", count: indent + 2)
        switch node {
        case .scalar(let value):
            output += value.canonicalJSON
        case .list(let items, _):
            output += inline ? "[" : "[\n"
            for (index, item) in items.enumerated() {
                if index > 0 { output += separator }
                if !inline { output += inner }
                writeJSON(item, indent: indent + 2, pretty: pretty && !inline, to: &output)
            }
            output += inline ? "]" : "\n" + String(repeating: " ", count: indent) + "]"
        case .map(let members, _):
            output += inline ? "{" : "{\n"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { output += separator }
                if !inline { output += inner }
                JSONValue.writeString(key, to: &output)
                output += colon
                writeJSON(value, indent: indent + 2, pretty: pretty && !inline, to: &output)
            }
            output += inline ? "}" : "\n" + String(repeating: " ", count: indent) + "}"
        }
    }

    // MARK: YAML

    static func yaml(_ node: CanonicalNode) -> String {
        var lines: [String] = []
        writeYAMLBlock(node, indent: 0, to: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func writeYAMLBlock(_ node: CanonicalNode, indent: Int, to lines: inout [String]) {
        let pad = String(repeating: " ", count: indent)
        switch node {
        case .scalar, .list(_, true), .map(_, true):
            lines.append(pad + inlineYAML(node))
        case .list(let items, false):
            if items.isEmpty {
                lines.append(pad + "[]")
                return
            }
            for item in items {
                if item.isInline {
                    lines.append(pad + "- " + inlineYAML(item))
                } else {
                    var nested: [String] = []
                    writeYAMLBlock(item, indent: indent + 2, to: &nested)
                    nested[0] = pad + "- " + nested[0].dropFirst(indent + 2)
                    lines.append(contentsOf: nested)
                }
            }
        case .map(let members, false):
            if members.isEmpty {
                lines.append(pad + "{}")
                return
            }
            for (key, value) in members {
                if value.isInline {
                    lines.append(pad + yamlString(key) + ": " + inlineYAML(value))
                } else {
                    lines.append(pad + yamlString(key) + ":")
                    writeYAMLBlock(value, indent: indent + 2, to: &lines)
                }
            }
        }
    }

    private static func inlineYAML(_ node: CanonicalNode) -> String {
        switch node {
        case .scalar(.string(let value)): yamlString(value)
        case .scalar(let value): value.canonicalJSON
        case .list(let items, _): "[" + items.map(inlineYAML).joined(separator: ", ") + "]"
        case .map(let members, _): "{" + members.map { yamlString($0.0) + ": " + inlineYAML($0.1) }.joined(separator: ", ") + "}"
        }
    }

    /// A plain scalar when it is unambiguous in both block and flow context, else a double-quoted one.
    static func yamlString(_ value: String) -> String {
        if isPlainSafe(value) { return value }
        var output = ""
        JSONValue.writeString(value, to: &output)
        return output
    }

    private static let reserved: Set<String> = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~",
    ]

    private static func isPlainSafe(_ value: String) -> Bool {
        // Durations (`45s`, `15m`) read back as strings in YAML 1.1 and 1.2.
        if let unit = value.unicodeScalars.last, "smhd".unicodeScalars.contains(unit), value.unicodeScalars.count > 1,
            value.unicodeScalars.dropLast().allSatisfy({ ("0"..."9").contains($0) })
        {
            return true
        }
        guard let first = value.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic || first == "_" else { return false }
        guard value.unicodeScalars.count <= 200 else { return false }
        let allowedScalars = value.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "_-./".unicodeScalars.contains(scalar))
        }
        return allowedScalars && !reserved.contains(value.lowercased()) && CanonicalNumber.parseDecimal(value) == nil
    }
}
