/// What Tollgate knows about one upstream tool: the parts of an MCP `Tool` that say what it does.
///
/// Built from each entry of a `tools/list` result and handed to ``RiskClassifier``. Only the fields the classifier
/// reads are kept; the relay forwards the server's original bytes, so nothing here needs to round-trip.
///
/// ```swift
/// let entry = try JSONDecoder().decode(JSONValue.self, from: Data(#"{"name": "delete_file", "inputSchema": {"type": "object"}}"#.utf8))
/// let tool = try ToolDescriptor(json: entry)
/// RiskClassifier().classify(tool).category  // .destructive
/// ```
public struct ToolDescriptor: Sendable, Hashable {
    /// The tool's name, as the server spells it and as agents call it.
    public var name: String
    /// The server's description of the tool, written for the model. Untrusted text.
    public var description: String?
    /// The JSON Schema of the tool's arguments (`inputSchema`), if the server sent one.
    public var inputSchema: JSONValue?
    /// The server's behaviour hints, if it sent any. See ``ToolAnnotations`` for how far they are trusted.
    public var annotations: ToolAnnotations?
    /// SHA-256 (lowercase hex) of the canonical JSON of the whole tool object as the upstream listed it (every member:
    /// ``ToolDefinition/hash``), when it was read from a listing: what definition pinning compares (docs/inventory.md).
    public var definitionHash: String?

    public init(name: String, description: String? = nil, inputSchema: JSONValue? = nil, annotations: ToolAnnotations? = nil) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.annotations = annotations
    }
}

extension ToolDescriptor {
    /// Reads one MCP `Tool` object, as found in the `tools` array of a `tools/list` result.
    ///
    /// Fields the classifier does not use (`title`, `outputSchema`, `icons`, `_meta`, ...) are ignored. A field that
    /// is present with the wrong type is an error rather than silently dropped, so a server that sends
    /// `"readOnlyHint": "yes"` is told so instead of being classified on half of what it said. JSON `null` counts as
    /// absent.
    public init(json: JSONValue) throws(ToolDescriptorError) {
        guard let members = json.objectValue else { throw .notAnObject(path: "") }
        guard let nameValue = members["name"], nameValue != .null else { throw .missingName }
        guard let name = nameValue.stringValue else { throw .wrongType(path: "name", expected: "string") }
        guard !name.isEmpty else { throw .emptyName }

        var description: String?
        if let value = members["description"], value != .null {
            guard let string = value.stringValue else { throw .wrongType(path: "description", expected: "string") }
            description = string
        }

        var inputSchema: JSONValue?
        if let value = members["inputSchema"], value != .null {
            guard value.objectValue != nil else { throw .wrongType(path: "inputSchema", expected: "object") }
            inputSchema = value
        }

        var annotations: ToolAnnotations?
        if let value = members["annotations"], value != .null {
            guard let hints = value.objectValue else { throw .wrongType(path: "annotations", expected: "object") }
            func flag(_ key: String) throws(ToolDescriptorError) -> Bool? {
                guard let value = hints[key], value != .null else { return nil }
                guard let bool = value.boolValue else { throw .wrongType(path: "annotations.\(key)", expected: "boolean") }
                return bool
            }
            var title: String?
            if let value = hints["title"], value != .null {
                guard let string = value.stringValue else { throw .wrongType(path: "annotations.title", expected: "string") }
                title = string
            }
            annotations = ToolAnnotations(
                title: title,
                readOnlyHint: try flag("readOnlyHint"),
                destructiveHint: try flag("destructiveHint"),
                idempotentHint: try flag("idempotentHint"),
                openWorldHint: try flag("openWorldHint")
            )
        }

        self.init(name: name, description: description, inputSchema: inputSchema, annotations: annotations)
    }
}
