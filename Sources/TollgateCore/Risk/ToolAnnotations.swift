/// The behaviour hints an MCP server publishes for one of its tools (`Tool.annotations` in `tools/list`).
///
/// These are **hints from the server, not facts**. The MCP specification says so in as many words: they are not
/// guaranteed to describe the tool faithfully, and a client must not make decisions on them when the server is not
/// trusted. Tollgate treats every upstream as untrusted, so ``RiskClassifier`` believes a hint that *raises* risk
/// (`destructiveHint=true`: the server admits the tool may destroy things) and is sceptical of a hint that *lowers*
/// it (`readOnlyHint=true` on a tool called `delete_file` is reported as a contradiction and ignored).
///
/// Each hint is kept exactly as the server sent it: `nil` means the server did not say. The `is...` properties apply
/// the defaults of the specification (2025-06-18) to answer the question the way an MCP client would.
///
/// ```swift
/// let hints = ToolAnnotations(readOnlyHint: false, destructiveHint: true)
/// hints.isDestructive  // true
/// ToolAnnotations().isDestructive  // true as well: the specification assumes the worst
/// ```
public struct ToolAnnotations: Sendable, Hashable, Codable {
    /// A human-readable title for the tool. Display only; never used to classify.
    public var title: String?
    /// If true, the tool does not modify its environment. Specification default: false.
    public var readOnlyHint: Bool?
    /// If true, the tool may perform destructive updates; if false, only additive ones. Meaningful only when the
    /// tool is not read-only. Specification default: true.
    public var destructiveHint: Bool?
    /// If true, calling the tool again with the same arguments has no further effect. Meaningful only when the tool
    /// is not read-only. Specification default: false.
    public var idempotentHint: Bool?
    /// If true, the tool may interact with an open world of external entities (the web, a bank, an exchange);
    /// if false, its world is closed (a local memory store). Specification default: true.
    public var openWorldHint: Bool?

    public init(
        title: String? = nil,
        readOnlyHint: Bool? = nil,
        destructiveHint: Bool? = nil,
        idempotentHint: Bool? = nil,
        openWorldHint: Bool? = nil
    ) {
        self.title = title
        self.readOnlyHint = readOnlyHint
        self.destructiveHint = destructiveHint
        self.idempotentHint = idempotentHint
        self.openWorldHint = openWorldHint
    }

    /// Whether the server claims the tool changes nothing, with the specification's default (false).
    public var isReadOnly: Bool { readOnlyHint ?? false }

    /// Whether the server allows that the tool may destroy data, with the specification's default (true).
    /// Always false for a tool that claims to be read-only, since the hint is meaningless there.
    public var isDestructive: Bool { isReadOnly ? false : (destructiveHint ?? true) }

    /// Whether the server claims repeated identical calls are harmless, with the specification's default (false).
    /// A tool that claims to be read-only counts as idempotent, since the hint is meaningless there.
    public var isIdempotent: Bool { isReadOnly ? true : (idempotentHint ?? false) }

    /// Whether the tool may reach an open world of external entities, with the specification's default (true).
    public var isOpenWorld: Bool { openWorldHint ?? true }
}
