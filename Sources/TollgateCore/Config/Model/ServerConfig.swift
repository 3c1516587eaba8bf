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
        if let exact = tools[tool] { return exact }
        let scalars = Array(tool.unicodeScalars)
        let matching = tools.keys.filter { ToolPattern.isPattern($0) }.map(ToolPattern.init).filter { $0.matches(scalars) }
        guard let best = matching.min(by: ToolPattern.precedes) else { return self.default }
        return tools[best.text] ?? self.default
    }
}
