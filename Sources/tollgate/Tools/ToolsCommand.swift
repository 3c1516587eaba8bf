import ArgumentParser
import Foundation
import Logging
import TollgateCore
import TollgatePostgres
import TollgateServer

/// `tollgate tools <server>`: the inventory of what agents can call on a server, and what the policy does with it.
struct ToolsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tools",
        abstract: "List an upstream server's tools with their risk and the policy's decision for each.",
        discussion: """
            Starts (or connects to) the server as the configuration describes it, lists every tool it offers, \
            classifies each (category and risk level, from its name, description and annotations) and evaluates \
            the server's policy file for a call with no arguments. Needs no database; given one (--database, \
            $TOLLGATE_DATABASE_URL, or the configuration's `database`), it also says where the live listing differs \
            from the recorded inventory: a tool not recorded, a definition other than the one recorded or accepted, \
            a recorded tool no longer listed.

            Examples:
              tollgate tools time --config tollgate.yaml
              tollgate tools git --format json
            """
    )

    @Argument(help: ArgumentHelp("The server's name in the configuration.", valueName: "server"))
    var server: String

    @OptionGroup var configuration: ConfigOptions
    @OptionGroup var database: DatabaseOptions
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
        let record = await RecordComparison.load(
            database: database, config: config, server: server, live: inventory.entries.map(\.tool), logger: logging.makeLogger("tollgate"))
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
                if let hash = entry.tool.definitionHash { object["hash"] = .string(hash) }
                if case .compared(let differences, _) = record { object["record"] = .array((differences[entry.tool.name] ?? []).map { .string($0) }) }
                return .object(object)
            }
            var result: [String: JSONValue] = ["server": .string(inventory.server), "tools": .array(tools)]
            if let hash = inventory.policyHash { result["policy"] = .string(hash) }
            switch record {
            case .compared(_, let notListed): result["recorded_not_listed"] = .array(notListed.map { .string($0) })
            case .notCompared(let why): result["record"] = .string(why)
            }
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
            switch record {
            case .notCompared(let why):
                print("not compared with the recorded inventory: \(why)")
            case .compared(let differences, let notListed):
                let lines =
                    differences.sorted { $0.key < $1.key }.flatMap { tool, notes in notes.map { "  \(tool): \($0)" } }
                    + notListed.map { "  \($0): recorded, but not listed now" }
                print(
                    lines.isEmpty
                        ? "the listing matches the recorded inventory" : "differs from the recorded inventory:\n" + lines.joined(separator: "\n"))
            }
        }
    }
}

/// How a live listing stands against the recorded inventory (docs/inventory.md).
enum RecordComparison {
    /// By tool: what differs (empty: nothing); and the recorded tools (not removed) the listing lacks.
    case compared([String: [String]], notListed: [String])
    /// Why not: no database given, or it could not be read.
    case notCompared(String)

    static func load(database: DatabaseOptions, config: GatewayConfig, server: String, live: [ToolDescriptor], logger: Logger) async -> Self {
        var options = database
        options.database =
            database.database ?? ProcessInfo.processInfo.environment["TOLLGATE_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? config.database
        guard options.database != nil || options.pgEnvironment else {
            return .notCompared("no database given (--database, TOLLGATE_DATABASE_URL or `database:` in the configuration)")
        }
        let rows: [InventoryStore.Row]
        do {
            rows = try await options.run(logger: logger) { client, store in
                let projections = GatewayServer.projections().filter { $0.name == "inventory" }
                _ = try await ProjectionRunner(store: store, projections: projections, logger: logger).catchUp()
                return try await InventoryStore(client: client).list(server: server)
            }
        } catch {
            return .notCompared("the database cannot be read: \(error)")
        }
        return compare(live: live, rows: rows)
    }

    static func compare(live: [ToolDescriptor], rows: [InventoryStore.Row]) -> Self {
        let recorded = Dictionary(rows.map { ($0.tool, $0) }, uniquingKeysWith: { first, _ in first })
        func short(_ hash: String?) -> String { hash.map { String($0.prefix(12)) } ?? "-" }
        var differences: [String: [String]] = [:]
        for tool in live {
            var notes: [String] = []
            guard let row = recorded[tool.name], !row.removed else {
                differences[tool.name] = ["not recorded (the gateway records it when an agent next lists the tools)"]
                continue
            }
            if let hash = tool.definitionHash, hash != row.hash {
                notes.append("its definition \(short(hash)) is not the one recorded (\(short(row.hash)))")
            }
            if let accepted = row.acceptedHash {
                if let hash = tool.definitionHash, hash != accepted {
                    notes.append("its definition \(short(hash)) is not the accepted one (\(short(accepted)))")
                }
            } else {
                notes.append("no definition of it has been accepted")
            }
            differences[tool.name] = notes
        }
        let listed = Set(live.map(\.name))
        let notListed = rows.filter { !$0.removed && !listed.contains($0.tool) }.map(\.tool)
        return .compared(differences, notListed: notListed)
    }
}
