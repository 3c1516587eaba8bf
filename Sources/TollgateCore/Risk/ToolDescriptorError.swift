/// Why an MCP `Tool` object from a `tools/list` result could not be read as a ``ToolDescriptor``.
public enum ToolDescriptorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The value at `path` should be a JSON object and is not (`""` is the tool itself).
    case notAnObject(path: String)
    /// The tool has no `name`, which MCP requires.
    case missingName
    /// The tool's `name` is the empty string, which no agent could call.
    case emptyName
    /// The field at `path` is present but is not of the `expected` JSON type.
    case wrongType(path: String, expected: String)

    public var description: String {
        switch self {
        case .notAnObject(let path):
            return path.isEmpty ? "a tool must be a JSON object" : "\(path) must be a JSON object"
        case .missingName:
            return "a tool must have a \"name\" (a string)"
        case .emptyName:
            return "a tool's \"name\" must not be empty"
        case .wrongType(let path, let expected):
            return "\(path) must be a \(expected)"
        }
    }
}
