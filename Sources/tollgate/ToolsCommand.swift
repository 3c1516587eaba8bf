import ArgumentParser
import Foundation
import TollgateCore
import TollgateServer

/// `tollgate tools <server>`: the inventory of what agents can call on a server, and what the policy does with it.
struct ToolsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tools",
        abstract: "List an upstream server's tools with their risk and the policy's decision for each.",
        discussion: """
            Starts (or connects to) the server as the configuration describes it, lists every tool it offers, \
            classifies each (category and risk level, from its name, description and annotations) and evaluates \
            the server's policy file for a call with no arguments. Needs no database.

            Examples:
              tollgate tools time --config tollgate.yaml
              tollgate tools git --format json
            """
    )

    @Argument(help: ArgumentHelp("The server's name in the configuration.", valueName: "server"))
    var server: String

    @OptionGroup var configuration: ConfigOptions
    @OptionGroup var logging: LoggingOptions

    @Option(help: "Output format: text for people, json for scripts.")
    var format: PolicyOutputFormat = .text

    func run() async throws {
        let config = try configuration.require()
        let inventory: ToolInventory
        do {
            inventory = try await ToolInventory.load(config: config, server: server, logger: logging.makeLogger("tollgate"))
        } catch {
            FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
            throw ExitCode(69)
        }
        switch format {
        case .json:
            let tools: [JSONValue] = inventory.entries.map { entry in
                var object: [String: JSONValue] = [
                    "name": .string(entry.tool.name), "category": .string(entry.risk.category.rawValue), "risk": .string(entry.risk.level.rawValue),
                    "reasons": .array(entry.risk.reasons.map { .string($0) }),
                ]
                if let description = entry.tool.description { object["description"] = .string(description) }
                if let decision = entry.decision { object["decision"] = .string(decision) }
                if let rule = entry.rule { object["rule"] = .string(rule) }
                return .object(object)
            }
            var result: [String: JSONValue] = ["server": .string(inventory.server), "tools": .array(tools)]
            if let hash = inventory.policyHash { result["policy"] = .string(hash) }
            print(JSONValue.object(result).canonicalJSON)
        case .text:
            let header = ["TOOL", "CATEGORY", "RISK", "DECISION", "RULE"]
            let rows = inventory.entries.map { entry in
                [entry.tool.name, entry.risk.category.rawValue, entry.risk.level.rawValue, entry.decision ?? "(no valid policy)", entry.rule ?? ""]
            }
            let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
            for row in [header] + rows {
                print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
            }
            let source = [inventory.serverName, inventory.serverVersion].compactMap { $0 }.joined(separator: " ")
            print(
                "\n\(inventory.entries.count) tools on \(inventory.server)\(source.isEmpty ? "" : " (\(source))"); policy \(inventory.policyHash ?? "not loaded")"
            )
        }
    }
}

/// `tollgate policy scaffold <server>`: a starting policy from the server's tools.
struct PolicyScaffoldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaffold",
        abstract: "Write a starting policy for a server from the tools it offers.",
        discussion: """
            Lists the server's tools (as `tollgate tools` does) and writes a policy: read-only tools allowed, \
            destructive and financial ones held for approval, the rest allowed within 30 calls a minute per agent, \
            and anything else denied. Review it before use. The result is checked like `tollgate policy check`.

            Examples:
              tollgate policy scaffold git --config tollgate.yaml > policies/git.yaml
              tollgate policy scaffold git --output policies/git.yaml
            """
    )

    @Argument(help: ArgumentHelp("The server's name in the configuration.", valueName: "server"))
    var server: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file (refuses to overwrite one) instead of stdout.", valueName: "file"))
    var output: String?

    @OptionGroup var configuration: ConfigOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let config = try configuration.require()
        if let output, FileManager.default.fileExists(atPath: output) {
            throw ValidationError("--output: \(output) exists; refusing to overwrite it")
        }
        let inventory: ToolInventory
        do {
            inventory = try await ToolInventory.load(config: config, server: server, logger: logging.makeLogger("tollgate"))
        } catch {
            FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
            throw ExitCode(69)
        }
        let text = inventory.scaffold()
        do {
            _ = try PolicyLoader.load(text, fileName: "scaffold.yaml")
        } catch {
            FileHandle.standardError.write(Data("tollgate: the scaffold did not validate (a bug; please report it):\n\(error)\n".utf8))
            throw ExitCode(70)
        }
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } else {
            print(text, terminator: "")
        }
    }
}

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
        var connector = database.gatewayConnector
        if connector.connectionString == nil, let configured = config.database { connector.connectionString = configured }
        if database.dataDirectory == nil, let directory = config.dataDirectory {
            connector.dataDirectory = URL(fileURLWithPath: directory).appendingPathComponent("postgres")
        }
        let logger = logging.makeLogger("tollgate")
        do {
            let code = try await StdioFront(config: config, server: server, agentKey: key, database: connector).run(logger: logger)
            if code != 0 { throw ExitCode(code) }
        } catch let error as InventoryError {
            FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
            throw ExitCode(78)
        }
    }
}
