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

    public init(command: String, arguments: [String] = [], environment: [String: String] = [:], directory: String? = nil) {
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.directory = directory
    }
}
