/// Bounds on what a policy or configuration file may cost to read, so a hostile or broken file gets an error, never a hang or a crash.
public struct SourceLimits: Sendable, Hashable {
    /// The largest file accepted, in bytes.
    public var maxBytes: Int
    /// The deepest nesting of lists and mappings.
    public var maxDepth: Int
    /// The most values in the document once YAML aliases are expanded ("billion laughs" stops here).
    public var maxNodes: Int

    public init(maxBytes: Int = 1 << 20, maxDepth: Int = 64, maxNodes: Int = 100_000) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
    }

    public static let `default` = SourceLimits()
}
