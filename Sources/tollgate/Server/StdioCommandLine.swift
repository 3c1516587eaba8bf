import ArgumentParser
import Foundation
import Logging
import TollgateCore
import TollgateServer

/// `tollgate stdio <server>`: the gateway over stdin and stdout.
struct StdioCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stdio",
        abstract: "Serve one MCP session over stdin and stdout, for clients that can only spawn a command.",
        discussion: """
            The same policy, event log and database as `tollgate serve`: every tools/call is decided and recorded. \
            The agent is identified by its key in TOLLGATE_AGENT_KEY. Logs go to stderr.

            Example client configuration:
              {"command": "tollgate", "args": ["stdio", "git", "--config", "/etc/tollgate/tollgate.yaml"],
               "env": {"TOLLGATE_AGENT_KEY": "tg_..."}}
            """
    )

    @Argument(help: ArgumentHelp("The server's name in the configuration.", valueName: "server"))
    var server: String

    @OptionGroup var configuration: ConfigOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let config = try configuration.require()
        guard let key = ProcessInfo.processInfo.environment["TOLLGATE_AGENT_KEY"], !key.isEmpty else {
            throw ValidationError("set TOLLGATE_AGENT_KEY to the agent's key (see `tollgate keys new`)")
        }
        let connector = database.gatewayConnector(for: config)
        let logger = logging.makeLogger(
            "tollgate", defaultLevel: Logger.Level(rawValue: config.logging.level) ?? .info, format: config.logging.format)
        do {
            let code = try await StdioFront(config: config, server: server, agentKey: key, database: connector).run(logger: logger)
            if code != 0 { throw ExitCode(code) }
        } catch let error as InventoryError {
            FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
            throw ExitCode(78)
        }
    }
}
