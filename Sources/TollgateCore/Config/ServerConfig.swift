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

    public init(name: String, upstream: Upstream, policyPath: String, storeArguments: ArgumentStorage = .full) {
        self.name = name
        self.upstream = upstream
        self.policyPath = policyPath
        self.storeArguments = storeArguments
    }
}
