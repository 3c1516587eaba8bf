import ArgumentParser
import Foundation
import TollgateCore
import TollgatePostgres
import TollgateServer

/// `tollgate inventory`: the record of every tool the gateway has seen its upstreams list (docs/inventory.md).
struct InventoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory",
        abstract: "The recorded tool inventory: each upstream tool's definition, rating and changes, from the log.",
        discussion: """
            Reads the `inventory` projection (brought up to date with the log first). The gateway records a tool's \
            definition each time it lists an upstream's tools: ToolDefinitionObserved, ToolDefinitionChanged (with a \
            diff) and ToolRemoved. `tollgate tools SERVER` lists a server's tools live instead.

            Examples:
              tollgate inventory list --server github
              tollgate inventory show github create_issue --format json
              tollgate inventory diff github create_issue
            """,
        subcommands: [InventoryListCommand.self, InventoryShowCommand.self, InventoryDiffCommand.self]
    )

    /// The projection's rows after catching it up with the log.
    static func rows(database: DatabaseOptions, logging: LoggingOptions, server: String?, tool: String?) async throws -> [InventoryStore.Row] {
        let logger = logging.makeLogger("tollgate")
        return try await database.run(logger: logger) { client, store in
            let projections = GatewayServer.projections().filter { $0.name == "inventory" }
            _ = try await ProjectionRunner(store: store, projections: projections, logger: logger).catchUp()
            return try await InventoryStore(client: client).list(server: server, tool: tool)
        }
    }

    static func json(_ row: InventoryStore.Row) -> JSONValue {
        func parsed(_ text: String?) -> JSONValue { text.flatMap { try? JSONValue(parsing: $0) } ?? .null }
        return .object([
            "server": .string(row.server), "tool": .string(row.tool), "hash": .string(row.hash), "definition": parsed(row.definition),
            "definition_bytes": .number(Double(row.definitionBytes)), "category": .string(row.category), "level": .string(row.level),
            "reasons": parsed(row.reasons), "first_seen": .string(EventCoding.timestamp(row.firstSeen)),
            "last_seen": .string(EventCoding.timestamp(row.lastSeen)), "changes": .number(Double(row.changes)), "removed": .bool(row.removed),
            "last_change": parsed(row.lastChange), "status": .string(row.status), "accepted_hash": row.acceptedHash.map { .string($0) } ?? .null,
            "accepted_by": row.acceptedBy.map { .string($0) } ?? .null,
            "accepted_at": row.acceptedAt.map { .string(EventCoding.timestamp($0)) } ?? .null,
            "accepted_approval": row.acceptedApproval.map { .string($0) } ?? .null,
        ])
    }

    static func one(database: DatabaseOptions, logging: LoggingOptions, server: String, tool: String) async throws -> InventoryStore.Row {
        guard let row = try await rows(database: database, logging: logging, server: server, tool: tool).first else {
            FileHandle.standardError.write(Data("tollgate: no tool `\(tool)` of server `\(server)` in the inventory\n".utf8))
            throw ExitCode(1)
        }
        return row
    }
}

struct InventoryListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every recorded tool: rating, changes, first and last seen.")

    @Option(help: "Only this server's tools.")
    var server: String?

    @Option(name: .long, help: "table or json.")
    var format: ApprovalsOutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let rows = try await InventoryCommand.rows(database: database, logging: logging, server: server, tool: nil)
        switch format {
        case .json:
            print(JSONValue.array(rows.map(InventoryCommand.json)).canonicalJSON)
        case .table:
            var table = [["SERVER", "TOOL", "CATEGORY", "LEVEL", "CHANGES", "STATUS", "HASH", "FIRST SEEN", "LAST SEEN"]]
            for row in rows {
                table.append([
                    row.server, row.tool, row.category, row.level, String(row.changes), row.removed ? "removed" : "listed",
                    String(row.hash.prefix(12)),
                    EventCoding.timestamp(row.firstSeen), EventCoding.timestamp(row.lastSeen),
                ])
            }
            print(TextTable.render(table))
        }
    }
}

struct InventoryShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One tool's recorded definition and rating.")

    @Argument(help: "The server's name.") var server: String
    @Argument(help: "The tool's name.") var tool: String

    @Option(name: .long, help: "table or json.")
    var format: ApprovalsOutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let row = try await InventoryCommand.one(database: database, logging: logging, server: server, tool: tool)
        let json = InventoryCommand.json(row)
        switch format {
        case .json:
            print(json.canonicalJSON)
        case .table:
            var lines = [
                "server:      \(row.server)", "tool:        \(row.tool)", "status:      \(row.removed ? "removed" : "listed")",
                "rating:      \(row.category), \(row.level) risk", "hash:        \(row.hash)", "first seen:  \(EventCoding.timestamp(row.firstSeen))",
                "last seen:   \(EventCoding.timestamp(row.lastSeen))", "changes:     \(row.changes)",
            ]
            for reason in json.objectValue?["reasons"]?.arrayValue ?? [] { lines.append("reason:      \(reason.stringValue ?? "")") }
            lines.append(
                "definition:  \(row.definition ?? "(over \(ToolDefinition.maxDefinitionBytes) bytes: \(row.definitionBytes) bytes, recorded by hash only)")"
            )
            print(lines.joined(separator: "\n"))
        }
    }
}

struct InventoryDiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "What the tool's last definition change changed.")

    @Argument(help: "The server's name.") var server: String
    @Argument(help: "The tool's name.") var tool: String

    @Option(name: .long, help: "table or json.")
    var format: ApprovalsOutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let row = try await InventoryCommand.one(database: database, logging: logging, server: server, tool: tool)
        guard let text = row.lastChange, let change = try? EventCoding.decode(ToolDefinitionChanged.self, from: Array(text.utf8)) else {
            if format == .json { print("null") } else { print("`\(tool)` of `\(server)` has not changed since it was first recorded") }
            return
        }
        switch format {
        case .json:
            print(((try? JSONValue(parsing: text)) ?? .null).canonicalJSON)
        case .table:
            var lines = ["\(server) \(tool): \(change.oldHash.prefix(12)) -> \(change.hash.prefix(12)), now \(change.category), \(change.level) risk"]
            if let note = change.note { lines.append(note) }
            for item in change.changes {
                lines.append("~ \(item.member)")
                lines.append("  - \(item.old ?? "(absent)")")
                lines.append("  + \(item.new ?? "(absent)")")
            }
            if change.changesOmitted > 0 { lines.append("(\(change.changesOmitted) more changed members not shown)") }
            print(lines.joined(separator: "\n"))
        }
    }
}
