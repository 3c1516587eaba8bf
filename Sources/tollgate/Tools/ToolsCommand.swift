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
