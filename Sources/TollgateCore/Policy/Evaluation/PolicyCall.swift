import Foundation

/// One `tools/call` as the policy sees it: who calls, through what, which tool with which arguments, and when.
public struct PolicyCall: Sendable, Hashable {
    /// The agent's id from its key.
    public var agent: String
    /// The grant the agent holds (agents sharing a grant share `scope: grant` counters).
    public var grant: String
    /// The MCP session id.
    public var session: String
    /// The upstream server's name.
    public var server: String
    /// The tool's name.
    public var tool: String
    /// The call's `arguments`; anything, including non-objects.
    public var arguments: JSONValue
    /// The tool's risk category, when the classifier knows it; used by `categories` entries.
    public var category: RiskCategory?
    /// The time of the call; windows and retry-after are computed from it.
    public var now: Date

    public init(
        agent: String,
        grant: String,
        session: String,
        server: String,
        tool: String,
        arguments: JSONValue = .object([:]),
        category: RiskCategory? = nil,
        now: Date
    ) {
        self.agent = agent
        self.grant = grant
        self.session = session
        self.server = server
        self.tool = tool
        self.arguments = arguments
        self.category = category
        self.now = now
    }
}
