import ArgumentParser
import AsyncHTTPClient
import Foundation
import TollgateCore

/// `tollgate approvals`: list and decide held tool calls through the gateway's approvals API.
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals",
        abstract: "List, show, approve and deny tool calls held for human approval.",
        discussion: """
            Talks to a running gateway's approvals API (/v1). The gateway is --server URL, else $TOLLGATE_SERVER, \
            else `server:` in $XDG_CONFIG_HOME/tollgate/cli.yaml (~/.config/tollgate/cli.yaml), else \
            http://127.0.0.1:8420. The reviewer's token comes from --token-file, else $TOLLGATE_TOKEN, else \
            `token:` in that file; make one with `tollgate keys new NAME --reviewer reviewer`.

            Examples:
              tollgate approvals list
              tollgate approvals show 4b0c7c1e-...
              tollgate approvals approve 4b0c7c1e-... --comment "checked the amount"
              tollgate approvals deny 4b0c7c1e-... --reason "not during the freeze"
              tollgate approvals watch
            """,
        subcommands: [
            ApprovalsListCommand.self, ApprovalsShowCommand.self, ApprovalsApproveCommand.self, ApprovalsDenyCommand.self,
            ApprovalsWatchCommand.self,
        ]
    )
}

/// Where the API is and who is asking; shared by every `approvals` command.
struct ApprovalsAPIOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("The gateway's base URL (default: $TOLLGATE_SERVER, the CLI settings file, or http://127.0.0.1:8420).", valueName: "url"))
    var server: String?

    @Option(
        name: .long,
        help: ArgumentHelp("A file holding the reviewer's token (default: $TOLLGATE_TOKEN, or the CLI settings file).", valueName: "file"))
    var tokenFile: String?

    @Option(name: .long, help: "table (for people) or json (for scripts).")
    var format: ApprovalsOutputFormat = .table

    /// Runs `body` with a client, and turns API errors into a message and exit code 1 (usage errors: 64).
    func run(_ body: (ApprovalsClient) async throws -> Void) async throws {
        let settings: (server: String, token: String)
        do {
            settings = try ApprovalsClient.settings(server: server, tokenFile: tokenFile, environment: ProcessInfo.processInfo.environment)
        } catch let failure as ApprovalsClient.Failure {
            FileHandle.standardError.write(Data("error: \(failure.message)\n".utf8))
            throw ExitCode(64)
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        do {
            try await body(ApprovalsClient(server: settings.server, token: settings.token, client: http))
            try await http.shutdown()
        } catch let failure as ApprovalsClient.Failure {
            try? await http.shutdown()
            if format == .json, let body = failure.body {
                print(body.canonicalJSON)
            } else {
                FileHandle.standardError.write(Data("error: \(failure.description)\n".utf8))
            }
            throw ExitCode(failure.code == "unreachable" ? 69 : 1)
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}

enum ApprovalsOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
}

struct ApprovalsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Approval requests, newest first (pending ones by default).",
        discussion: """
            Examples:
              tollgate approvals list
              tollgate approvals list --status approved --tool transfer --format json
              tollgate approvals list --status all --all
            """)

    @OptionGroup var api: ApprovalsAPIOptions

    @Option(name: .long, help: "pending, approved, denied, expired, or all.")
    var status: String = "pending"

    @Option(name: .customLong("server-name"), help: ArgumentHelp("Only requests for this MCP server.", valueName: "name"))
    var serverName: String?

    @Option(name: .long, help: "Only requests from this agent.")
    var agent: String?

    @Option(name: .long, help: "Only requests for this tool.")
    var tool: String?

    @Option(name: .long, help: "Requests per page, 1 to 500.")
    var limit: Int = 50

    @Flag(name: .long, help: "Follow next_cursor through every page.")
    var all = false

    @Option(name: .long, help: ArgumentHelp("Start from this page (next_cursor of an earlier one).", valueName: "cursor"))
    var cursor: String?

    func validate() throws {
        guard status == "all" || Approval.Status(rawValue: status) != nil else {
            throw ValidationError("--status must be pending, approved, denied, expired or all")
        }
        guard (1...500).contains(limit) else { throw ValidationError("--limit must be from 1 to 500") }
    }

    func run() async throws {
        try await api.run { client in
            var items: [JSONValue] = []
            var next = cursor
            repeat {
                let page = try await client.send(
                    .GET,
                    ApprovalsClient.listPath([
                        ("status", status == "all" ? nil : status), ("server", serverName), ("agent", agent), ("tool", tool),
                        ("limit", String(limit)),
                        ("cursor", next),
                    ]))
                items += page["items"]?.arrayValue ?? []
                next = page["next_cursor"]?.stringValue
                if !all {
                    if api.format == .json {
                        print(page.canonicalJSON)
                        return
                    }
                    break
                }
            } while next != nil
            switch api.format {
            case .json: print(JSONValue.object(["items": .array(items), "next_cursor": .null]).canonicalJSON)
            case .table:
                print(items.isEmpty ? "no approval requests" : ApprovalsText.table(items))
                if let next, !all { print("more: --cursor \(next)") }
            }
        }
    }
}

struct ApprovalsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "One approval request, with the call's arguments and the rule that asked.")

    @OptionGroup var api: ApprovalsAPIOptions

    @Argument(help: "The approval's id.")
    var id: String

    func validate() throws { try ApprovalID.check(id) }

    func run() async throws {
        try await api.run { client in
            let approval = try await client.send(.GET, "/v1/approvals/\(id.lowercased())")
            print(api.format == .json ? approval.canonicalJSON : ApprovalsText.detail(approval))
        }
    }
}

struct ApprovalsApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve a held call (you count once toward its quorum).",
        discussion: """
            Exits 1 with the API's error when the request is already decided (and says how), when you already \
            approved it, when you made the call yourself, or when you are not among its reviewers.
            """)

    @OptionGroup var api: ApprovalsAPIOptions

    @Argument(help: "The approval's id.")
    var id: String

    @Option(name: .long, help: "A note kept in the log with your approval.")
    var comment: String?

    func validate() throws {
        try ApprovalID.check(id)
        if let comment, comment.count > 2000 { throw ValidationError("--comment may have at most 2000 characters") }
    }

    func run() async throws {
        try await api.run { client in
            let body: JSONValue = comment.map { ["comment": .string($0)] } ?? [:]
            let approval = try await client.send(.POST, "/v1/approvals/\(id.lowercased())/approve", body: body)
            switch api.format {
            case .json: print(approval.canonicalJSON)
            case .table:
                let count = approval["approvals"]?.arrayValue?.count ?? 0
                print(
                    "approved: \(id.lowercased()) is \(ApprovalsText.status(approval)) (\(count) of \(Int(approval["quorum"]?.doubleValue ?? 1)) approvals)"
                )
            }
        }
    }
}

struct ApprovalsDenyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deny", abstract: "Deny a held call; the agent is shown your reason.")

    @OptionGroup var api: ApprovalsAPIOptions

    @Argument(help: "The approval's id.")
    var id: String

    @Option(name: .long, help: "Why (required; the agent sees it).")
    var reason: String

    func validate() throws {
        try ApprovalID.check(id)
        guard !reason.allSatisfy(\.isWhitespace), reason.count <= 2000 else { throw ValidationError("--reason needs 1 to 2000 characters") }
    }

    func run() async throws {
        try await api.run { client in
            let approval = try await client.send(.POST, "/v1/approvals/\(id.lowercased())/deny", body: ["reason": .string(reason)])
            print(api.format == .json ? approval.canonicalJSON : "denied: \(id.lowercased())")
        }
    }
}

struct ApprovalsWatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch", abstract: "Print each new pending request as it arrives, until interrupted.",
        discussion: """
            Reads the pending requests every --interval seconds and prints the ones not seen before: a table row each, \
            or one JSON object per line with --format json (for a script to read).
            """)

    @OptionGroup var api: ApprovalsAPIOptions

    @Option(name: .long, help: "Seconds between reads (0.2 to 60).")
    var interval: Double = 1

    @Option(name: .long, help: ArgumentHelp("Stop after this many new requests (for scripts).", valueName: "n"))
    var count: Int?

    func validate() throws {
        guard (0.2...60).contains(interval) else { throw ValidationError("--interval must be from 0.2 to 60 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        try await api.run { client in
            var seen = Set<String>()
            var printed = 0
            var headerShown = false
            while !Task.isCancelled {
                let page = try await client.send(.GET, ApprovalsClient.listPath([("status", "pending"), ("limit", "500")]))
                let fresh = (page["items"]?.arrayValue ?? []).reversed().filter { item in
                    guard let id = item["id"]?.stringValue else { return false }
                    return seen.insert(id).inserted
                }
                for item in fresh {
                    switch api.format {
                    case .json: print(item.canonicalJSON)
                    case .table:
                        let lines = ApprovalsText.table([item]).split(separator: "\n")
                        if !headerShown {
                            print(lines[0])
                            headerShown = true
                        }
                        print(lines[1])
                    }
                    fflush(nil)
                    printed += 1
                    if let count, printed >= count { return }
                }
                try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            }
        }
    }
}

enum ApprovalID {
    static func check(_ id: String) throws {
        guard UUID(uuidString: id) != nil else {
            throw ValidationError("`\(id.prefix(80))` is not an approval id (a UUID, as `approvals list` shows)")
        }
    }
}
