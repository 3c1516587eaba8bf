/// A policy for one upstream MCP server: which tool calls are allowed, denied, rate-limited, held for approval or hidden.
///
/// A `Policy` is the plain model of a policy file. Read one with ``PolicyLoader`` (JSON or YAML, validated with every
/// error reported at once) and evaluate calls against the ``CompiledPolicy`` it gives:
///
/// ```swift
/// let policy = try PolicyLoader.load(yaml, fileName: "stripe.yaml")
/// let keys = policy.counterKeys(for: call)                     // read these counts from the store
/// let decision = policy.evaluate(call, counts: counts)         // allow, deny, limited, approval, hidden
/// ```
///
/// The language is described in `docs/policy.md`.
public struct Policy: Sendable, Hashable {
    /// The version of the policy language. Only `"1"` exists.
    public var version: String
    /// A note for people; it is part of the content hash but has no effect on decisions.
    public var description: String?
    /// What happens to a tool that no tool key and no category entry matches.
    public var defaultAction: DefaultAction
    /// Tool names and patterns removed from `tools/list` and refused on `tools/call`.
    public var hide: [String]
    /// Limits that apply to every call the policy does not deny.
    public var limits: [PolicyLimit]
    /// A policy per risk category, for the tools that no tool key matches.
    public var categories: [RiskCategory: ToolPolicy]
    /// A policy per tool name or tool-name pattern (`Binance*`, `*_delete`, `*`).
    public var tools: [String: ToolPolicy]
    /// What happens to calls of a tool whose definition is not the accepted one (docs/inventory.md, "Pinning").
    public var onDefinitionChange: DefinitionChangeAction = .hold
    /// What the server's first recorded listing does: accepted as the baseline, or every tool held for review.
    public var firstListing: FirstListing = .accept

    public init(
        version: String = "1",
        description: String? = nil,
        defaultAction: DefaultAction = .deny,
        hide: [String] = [],
        limits: [PolicyLimit] = [],
        categories: [RiskCategory: ToolPolicy] = [:],
        tools: [String: ToolPolicy] = [:]
    ) {
        self.version = version
        self.description = description
        self.defaultAction = defaultAction
        self.hide = hide
        self.limits = limits
        self.categories = categories
        self.tools = tools
    }

    /// `on_definition_change`: calls of a tool whose definition changed since it was last accepted (or of a tool with
    /// no accepted definition) are held for a reviewer to accept it (`hold`), refused (`deny`), or run and recorded as
    /// such (`allow`).
    public enum DefinitionChangeAction: String, Sendable, Hashable, CaseIterable {
        case hold
        case deny
        case allow
    }

    /// `first_listing`: the tools of a server's first recorded listing are its baseline, accepted as listed (`accept`),
    /// or each one waits for someone to accept it (`hold`), as a tool added later does.
    public enum FirstListing: String, Sendable, Hashable, CaseIterable {
        case accept
        case hold
    }

    /// What a policy does with a tool it says nothing about.
    public enum DefaultAction: String, Sendable, Hashable, CaseIterable {
        case allow
        case deny
    }
}
