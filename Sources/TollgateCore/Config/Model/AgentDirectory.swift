/// Finds the configured agent a presented bearer key belongs to.
///
/// The key is hashed once and compared with every configured hash, each comparison in constant time and none skipped
/// after a match, so the time taken says nothing about which agent, or how much of a hash, matched.
///
/// ```swift
/// let directory = AgentDirectory(config.agents)
/// guard let agent = directory.agent(forKey: bearerToken) else { return .unauthorized }
/// ```
public struct AgentDirectory: Sendable {
    private struct Entry: Sendable {
        var agent: AgentConfig
        var digest: [UInt8]
    }

    private let entries: [Entry]

    /// Agents whose hash is malformed are left out: no key can match them.
    public init(_ agents: [AgentConfig]) {
        entries = agents.compactMap { agent in
            AgentKey.digest(fromHash: agent.keyHash).map { Entry(agent: agent, digest: $0) }
        }
    }

    /// The agent whose key this is (the first, should two share a hash), or `nil`.
    public func agent(forKey key: String) -> AgentConfig? {
        let digest = AgentKey.digest(of: key)
        var found: Int?
        for index in entries.indices {
            let equal = AgentKey.constantTimeEqual(digest, entries[index].digest)
            if equal && found == nil { found = index }
        }
        return found.map { entries[$0].agent }
    }
}
