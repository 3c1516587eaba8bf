/// An MCP server the gateway starts as a child process and speaks to over its stdin and stdout.
public struct StdioUpstream: Sendable, Equatable {
    /// The program, as written: a name looked up in `PATH`, or a path.
    public var command: String
    public var arguments: [String]
    /// The variables the child gets besides the few the gateway passes on (`PATH`, `HOME`, the locale, `TZ`, ...); the
    /// gateway's other variables never reach it.
    public var environment: [String: String]
    /// The child's working directory, absolute when the configuration's directory is; `nil` for the gateway's own.
    public var directory: String?
    /// The OS user the child runs as (a name from the password database); `nil` for the gateway's own user.
    public var user: String?
    /// The child's group (a name from the group database), with `user` only; `nil` for the user's primary group. Either
    /// way the child also has the user's supplementary groups.
    public var group: String?

    public init(
        command: String, arguments: [String] = [], environment: [String: String] = [:], directory: String? = nil, user: String? = nil,
        group: String? = nil
    ) {
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.directory = directory
        self.user = user
        self.group = group
    }
}
