/// One upstream MCP server the gateway fronts: its name (the `server` of policies and events), how to reach it, and
/// the policy that governs calls to it.
public struct ServerConfig: Sendable, Equatable {
    /// 1 to 63 of `a-z 0-9 _ -`, starting with a letter or digit.
    public var name: String
    public var upstream: Upstream
    /// The policy file, absolute when the configuration's directory is (relative paths resolve against it).
    public var policyPath: String
    /// How much of each call's arguments the event log keeps for this server.
    public var storeArguments: ArgumentStorage
    /// Per tool (a name or a glob), what differs from `storeArguments` (`store_arguments_by_tool`).
    public var storeArgumentsByTool: [String: ArgumentStorage]
    /// When an allowed call is forwarded: once its decision is flushed (`durable`), or once it is committed and ordered
    /// in the log but before the flush (`async`) (`commit`).
    public var commit: CommitMode = .durable
    /// Per tool (a name or a glob), what differs from `commit` (`commit_by_tool`).
    public var commitByTool: [String: CommitMode] = [:]

    public init(
        name: String, upstream: Upstream, policyPath: String, storeArguments: ArgumentStorage = .full,
        storeArgumentsByTool: [String: ArgumentStorage] = [:]
    ) {
        self.name = name
        self.upstream = upstream
        self.policyPath = policyPath
        self.storeArguments = storeArguments
        self.storeArgumentsByTool = storeArgumentsByTool
    }

    /// How this server's allowed calls are committed, tool by tool.
    public var commitChoice: CommitChoice {
        CommitChoice(default: commit, tools: commitByTool)
    }

    /// How this server's calls' arguments are kept, tool by tool.
    public var argumentRedaction: ArgumentRedaction {
        ArgumentRedaction(default: storeArguments, tools: storeArgumentsByTool)
    }
}

/// How much of a call's arguments the log keeps, per tool: the most specific matching name or glob (as policies pick
/// among tool keys: an exact name first, then more literal characters, then fewer `*`), else the server's default.
/// Applied before the event is written; the hash of the full arguments is always kept.
public struct ArgumentRedaction: Sendable, Equatable {
    public var `default`: ArgumentStorage
    public var tools: [String: ArgumentStorage]

    public init(default: ArgumentStorage = .full, tools: [String: ArgumentStorage] = [:]) {
        self.default = `default`
        self.tools = tools
    }

    public func storage(for tool: String) -> ArgumentStorage {
        ToolPattern.mostSpecific(tools.keys, for: tool).flatMap { tools[$0] } ?? self.default
    }
}

/// When the decision of an allowed call that needs no approval is on disk before the call is forwarded.
public enum CommitMode: String, Sendable, Equatable, CaseIterable {
    /// The decision is flushed (PostgreSQL's synchronous commit) before the call is forwarded: a crash of PostgreSQL
    /// loses no forwarded call's decision.
    case durable
    /// The decision is committed and ordered in the log (visible to every other transaction, its reservations counted)
    /// but not yet flushed when the call is forwarded (PostgreSQL's asynchronous commit for that transaction): a flush
    /// stall does not hold calls, and a crash of PostgreSQL can lose the newest decisions (docs/gateway.md).
    case async
}

/// The commit mode per tool: the most specific matching name or glob, else the server's (as ``ArgumentRedaction``).
public struct CommitChoice: Sendable, Equatable {
    public var `default`: CommitMode
    public var tools: [String: CommitMode]

    public init(default: CommitMode = .durable, tools: [String: CommitMode] = [:]) {
        self.default = `default`
        self.tools = tools
    }

    public func mode(for tool: String) -> CommitMode {
        ToolPattern.mostSpecific(tools.keys, for: tool).flatMap { tools[$0] } ?? self.default
    }

    /// Whether any tool may be committed asynchronously.
    public var anyAsync: Bool { self.default == .async || tools.values.contains(.async) }
}

extension ToolPattern {
    /// The key of `keys` that names `tool` most specifically: the exact name, else the matching glob that policies
    /// would pick (more literal characters, then fewer `*`, then the first by Unicode scalars); nil when none matches.
    static func mostSpecific(_ keys: some Collection<String>, for tool: String) -> String? {
        if keys.contains(tool) { return tool }
        let scalars = Array(tool.unicodeScalars)
        let matching = keys.filter { ToolPattern.isPattern($0) }.map(ToolPattern.init).filter { $0.matches(scalars) }
        return matching.min(by: ToolPattern.precedes)?.text
    }
}
