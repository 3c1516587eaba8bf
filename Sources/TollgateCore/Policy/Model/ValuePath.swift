/// Where a condition or an `increment_from` reads a value: `args.amount`, `args.metadata.key`, `args.items.0`, or one
/// of the call's identities (`agent`, `grant`, `session`, `server`, `tool`).
public struct ValuePath: Sendable, Hashable, CustomStringConvertible {
    /// What the path starts from.
    public enum Root: String, Sendable, Hashable, CaseIterable {
        case args
        case agent
        case grant
        case session
        case server
        case tool
    }

    public var root: Root
    /// Object keys (or array indexes) below ``root``; only `args` has any.
    public var components: [String]

    public init(root: Root, components: [String] = []) {
        self.root = root
        self.components = components
    }

    /// Parses `args.a.b`; `nil` for an unknown root, an empty component, or components after an identity root.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, let root = Root(rawValue: first) else { return nil }
        let rest = Array(parts.dropFirst())
        if rest.contains(where: \.isEmpty) { return nil }
        if root != .args && !rest.isEmpty { return nil }
        self.init(root: root, components: rest)
    }

    public var description: String {
        ([root.rawValue] + components).joined(separator: ".")
    }
}
