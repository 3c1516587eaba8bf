/// An agent allowed to connect: its id (the `agent` of policies and events), the grant its calls count against, and
/// the hash of the key it presents (the key itself is never stored).
public struct AgentConfig: Sendable, Equatable {
    public var id: String
    /// The grant the agent's calls are made under; the id unless the file says otherwise.
    public var grant: String
    /// `sha256:` and 64 lowercase hex digits, from ``AgentKey/hash(_:)``.
    public var keyHash: String

    public init(id: String, grant: String? = nil, keyHash: String) {
        self.id = id
        self.grant = grant ?? id
        self.keyHash = keyHash
    }
}
