/// Who is behind a relay session: the agent (from its key), its grant, the session id and the upstream server.
public struct SessionIdentity: Sendable, Hashable {
    public var agent: String
    public var grant: String
    public var session: String
    public var server: String

    public init(agent: String, grant: String, session: String, server: String) {
        self.agent = agent
        self.grant = grant
        self.session = session
        self.server = server
    }
}
