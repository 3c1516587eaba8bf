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
              tollgate inventory accept github create_issue --hash 9b1c...   # through the gateway's API, as a reviewer
              tollgate inventory verify                                     # exit 1 when any tool is changed or new (CI)
            """,
        subcommands: [
            InventoryListCommand.self, InventoryShowCommand.self, InventoryDiffCommand.self, InventoryAcceptCommand.self,
            InventoryVerifyCommand.self,
        ]
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

    /// Each configured server's policy as its file says now (`--config`); a server whose policy does not load is absent.
    static func policies(_ configuration: ConfigOptions) throws -> [String: CompiledPolicy] {
        guard let config = try configuration.load() else { return [:] }
        var policies: [String: CompiledPolicy] = [:]
        for server in config.servers {
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: server.policyPath)),
                let policy = try? PolicyLoader.load(data, fileName: server.policyPath)
            else {
                FileHandle.standardError.write(
                    Data("tollgate: the policy of `\(server.name)` (\(server.policyPath)) does not load: no decision shown\n".utf8))
                continue
            }
            policies[server.name] = policy
        }
        return policies
    }

    /// What the server's policy gives a call of the tool with no arguments; nil without one.
    static func decision(_ row: InventoryStore.Row, policies: [String: CompiledPolicy]) -> (decision: String, rule: String)? {
        policies[row.server].map {
            ToolInventory.decision(of: $0, server: row.server, tool: row.tool, category: RiskCategory(rawValue: row.category) ?? .other)
        }
    }

    static func json(_ row: InventoryStore.Row, policies: [String: CompiledPolicy] = [:]) -> JSONValue {
        func parsed(_ text: String?) -> JSONValue { text.flatMap { try? JSONValue(parsing: $0) } ?? .null }
        let decided = decision(row, policies: policies)
        return .object([
            "decision": decided.map { .string($0.decision) } ?? .null, "rule": decided.map { .string($0.rule) } ?? .null,
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

    @OptionGroup var configuration: ConfigOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let policies = try InventoryCommand.policies(configuration)
        let rows = try await InventoryCommand.rows(database: database, logging: logging, server: server, tool: nil)
        switch format {
        case .json:
            print(JSONValue.array(rows.map { InventoryCommand.json($0, policies: policies) }).canonicalJSON)
        case .table:
            var table = [
                ["SERVER", "TOOL", "CATEGORY", "LEVEL", "DECISION", "STATUS", "HASH", "ACCEPTED", "BY", "CHANGES", "FIRST SEEN", "LAST SEEN"]
            ]
            for row in rows {
                table.append([
                    row.server, row.tool, row.category, row.level, InventoryCommand.decision(row, policies: policies)?.decision ?? "-", row.status,
                    String(row.hash.prefix(12)), row.acceptedHash.map { String($0.prefix(12)) } ?? "-",
                    row.acceptedBy ?? (row.acceptedHash == nil ? "-" : "(baseline)"), String(row.changes),
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
                "server:      \(row.server)", "tool:        \(row.tool)", "status:      \(row.status)",
                "accepted:    \(row.acceptedHash ?? "-")\(row.acceptedHash == nil ? "" : " by \(row.acceptedBy ?? "the baseline")")",
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

struct InventoryAcceptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept", abstract: "Accept a tool's current definition, as a reviewer, through the gateway's API.",
        discussion: """
            Calls POST /v1/tools/SERVER/TOOL/accept on the running gateway, as the reviewer whose token is given \
            (--token-file, $TOLLGATE_TOKEN or the CLI settings file, as for `tollgate approvals`); --server is the \
            gateway's URL. --hash names the definition you read (`tollgate inventory show` or `diff`); it must be the \
            tool's current one. Without --hash, the current definition is read first and accepted, and its hash \
            printed. Calls held for that definition are then approved as you. Exits 1 with the API's error (an \
            unknown tool, a hash that is not the current one, an auditor's token).
            """)

    @OptionGroup var api: ApprovalsAPIOptions

    @Argument(help: "The upstream server's name (in the configuration).") var upstream: String
    @Argument(help: "The tool's name.") var tool: String

    @Option(name: .long, help: "The hash of the definition to accept (64 lowercase hex digits); default: the current one.")
    var hash: String?

    @Option(name: .long, help: "A note kept in the log with the acceptance.")
    var comment: String?

    func validate() throws {
        for (name, value) in [("server", upstream), ("tool", tool)] where value.isEmpty || value.utf8.count > ToolDefinition.maxNameBytes {
            throw ValidationError("the \(name) name must have 1 to \(ToolDefinition.maxNameBytes) bytes")
        }
        if let hash, hash.utf8.count != 64 || !hash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) {
            throw ValidationError("--hash must be 64 lowercase hexadecimal digits (a definition's SHA-256, as `tollgate inventory show` prints it)")
        }
        if let comment, comment.count > 2000 { throw ValidationError("--comment may have at most 2000 characters") }
    }

    func run() async throws {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#%;")
        let path =
            "/v1/tools/\(upstream.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")/\(tool.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        try await api.run { client in
            var chosen = hash
            if chosen == nil { chosen = try await client.send(.GET, path)["hash"]?.stringValue }
            guard let chosen else { throw ApprovalsClient.Failure(code: "invalid_response", message: "the gateway did not name the tool's hash") }
            var body: [String: JSONValue] = ["hash": .string(chosen)]
            if let comment { body["comment"] = .string(comment) }
            let answer = try await client.send(.POST, path + "/accept", body: .object(body))
            switch api.format {
            case .json: print(answer.canonicalJSON)
            case .table:
                let already = answer["already_accepted"] == .bool(true)
                var lines = ["\(already ? "already accepted" : "accepted"): \(upstream) \(tool) \(chosen)"]
                let released = answer["released"]?.arrayValue?.compactMap(\.stringValue) ?? []
                if !released.isEmpty { lines.append("released \(released.count) held request(s): \(released.joined(separator: ", "))") }
                for id in answer["awaiting_quorum"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                    lines.append("approved, awaiting more reviewers: \(id)")
                }
                for item in answer["left_pending"]?.arrayValue ?? [] {
                    lines.append("left pending: \(item["id"]?.stringValue ?? "?"): \(item["reason"]?.stringValue ?? "")")
                }
                print(lines.joined(separator: "\n"))
            }
        }
    }
}

struct InventoryVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Exit 1 when any listed tool's definition is not the accepted one (for CI).",
        discussion: """
            Reads the inventory (brought up to date with the log first). Lists every tool whose status is `changed` \
            (it differs from the definition accepted) or `new` (no definition accepted) and exits 1; exits 0 when every \
            listed tool is accepted. Removed tools are not counted.
            """)

    @Option(help: "Only this server's tools.")
    var server: String?

    @Option(name: .long, help: "table or json.")
    var format: ApprovalsOutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let rows = try await InventoryCommand.rows(database: database, logging: logging, server: server, tool: nil)
        let unaccepted = rows.filter { $0.status == "changed" || $0.status == "new" }
        let listed = rows.filter { !$0.removed }.count
        switch format {
        case .json:
            let body: JSONValue = [
                "ok": .bool(unaccepted.isEmpty), "tools": .number(Double(listed)),
                "unaccepted": .array(
                    unaccepted.map {
                        [
                            "server": .string($0.server), "tool": .string($0.tool), "status": .string($0.status), "hash": .string($0.hash),
                            "accepted_hash": $0.acceptedHash.map { .string($0) } ?? .null,
                        ]
                    }),
            ]
            print(body.canonicalJSON)
        case .table:
            if unaccepted.isEmpty {
                print("ok: \(listed) listed tool\(listed == 1 ? "" : "s")\(server.map { " of \($0)" } ?? ""), every one on its accepted definition")
            } else {
                var table = [["SERVER", "TOOL", "STATUS", "HASH", "ACCEPTED"]]
                for row in unaccepted {
                    table.append([
                        row.server, row.tool, row.status, String(row.hash.prefix(12)), row.acceptedHash.map { String($0.prefix(12)) } ?? "-",
                    ])
                }
                print(TextTable.render(table))
                print(
                    "\(unaccepted.count) tool\(unaccepted.count == 1 ? "" : "s") not on an accepted definition: review with `tollgate inventory diff`, then `tollgate inventory accept`"
                )
            }
        }
        if !unaccepted.isEmpty { throw ExitCode(1) }
    }
}
