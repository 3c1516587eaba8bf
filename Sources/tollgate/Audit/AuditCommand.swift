import ArgumentParser
import Foundation
import TollgateCore
import TollgatePostgres
import TollgateServer

/// `tollgate audit`: the log as evidence.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Replay and verify the event log, and try a policy on recorded traffic.",
        subcommands: [AuditReplayCommand.self, AuditVerifyCommand.self, AuditWhatIfCommand.self]
    )
}

/// `--since`, `--until`, `--agent`, `--server`, `--tool`.
struct AuditFilterOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Calls decided at or after T: an ISO 8601 time or date, or an age such as 90m, 24h, 7d.", valueName: "T"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Calls decided before T (same forms as --since).", valueName: "T"))
    var until: String?

    @Option(name: .long, help: "Only this agent's calls.")
    var agent: String?

    @Option(name: .long, help: "Only calls to this MCP server.")
    var server: String?

    @Option(name: .long, help: "Only calls of this tool.")
    var tool: String?

    func validate() throws {
        if let since { _ = try Self.time(since, option: "--since") }
        if let until { _ = try Self.time(until, option: "--until") }
        for (name, value) in [("--agent", agent), ("--server", server), ("--tool", tool)] {
            if let value, !(1...200).contains(value.count) || value.unicodeScalars.contains("\0") {
                throw ValidationError("\(name) must have 1 to 200 characters")
            }
        }
    }

    func filter(now: Date = Date()) throws -> AuditTrail.Filter {
        AuditTrail.Filter(
            since: try since.map { try Self.time($0, option: "--since", now: now) },
            until: try until.map { try Self.time($0, option: "--until", now: now) }, agent: agent, server: server, tool: tool)
    }

    /// An ISO 8601 time (`2026-12-02T08:00:00Z`, with or without fractions), a date (`2026-12-02`, UTC midnight), or
    /// an age before `now` (`30s`, `90m`, `24h`, `7d`).
    static func time(_ text: String, option: String, now: Date = Date()) throws -> Date {
        if let last = text.last, "smhd".contains(last), let amount = Double(text.dropLast()), amount >= 0, amount < 1e7 {
            let unit: Double = ["s": 1, "m": 60, "h": 3600, "d": 86400][String(last)]!
            return now.addingTimeInterval(-amount * unit)
        }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().year().month().day().parse(text) { return date }
        throw ValidationError(
            "\(option) `\(text.prefix(64))` is not a time: use an ISO 8601 time (2026-12-02T08:00:00Z), a date (2026-12-02) or an age (90m, 24h, 7d)")
    }
}

enum AuditOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case jsonl
}

struct AuditReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "The history of tool calls from the log: decision, policy version and rule, reviewers, outcome.",
        discussion: """
            One line per call, in the order the calls were decided. --format jsonl prints one JSON object per call \
            (with the arguments as the log kept them, the approval's reviewers and the call's duration).

            Examples:
              tollgate audit replay --since 24h
              tollgate audit replay --agent ci-bot --tool transfer --format jsonl
            """)

    @OptionGroup var filter: AuditFilterOptions

    @Option(name: .long, help: "table (for people) or jsonl (one JSON object per line).")
    var format: AuditOutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let calls = try await database.run(logger: logging.makeLogger("tollgate")) { _, store in
            try await AuditTrail.read(store: store, filter: try filter.filter())
        }
        do {
            switch format {
            case .jsonl:
                for call in calls { print(call.json.canonicalJSON) }
            case .table:
                var rows = [["DECIDED", "AGENT", "SERVER", "TOOL", "DECISION", "RULE", "POLICY", "ARGUMENTS", "REVIEWERS", "OUTCOME"]]
                for call in calls {
                    let d = call.decided
                    let reviewers = (call.approval?.grants.map(\.reviewer) ?? []) + (call.approval?.denial.map { ["\($0.reviewer) (denied)"] } ?? [])
                    rows.append([
                        EventCoding.timestamp(d.decidedAt), d.agent, d.server, d.tool, d.decision, d.rule, String(d.policyHash.suffix(12)),
                        d.argumentsSummary.map { "summary (\($0.bytes) bytes)" } ?? d.argumentsStorage,
                        reviewers.isEmpty ? "-" : reviewers.joined(separator: ","), call.outcome,
                    ])
                }
                print(calls.isEmpty ? "no calls" : TextTable.render(rows))
            }
        }
    }
}

struct AuditVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the seal chain over the log; name the first event changed, removed or inserted.",
        discussion: """
            Exits 0 when every sealed event matches its seal and every approved (or used) approval has its quorum of \
            ApprovalGranted events in the log; 1 at the first break (and lists up to 20 of the seal's, and each \
            approval the log does not justify, by id). The seals are \
            written by the projector of `tollgate serve` as events land; events after the last seal are counted as \
            not sealed yet. Record the printed head somewhere the database's owner cannot change (a ticket, a \
            webhook receiver) and pass it to --expect later: that catches a rewrite of the whole chain.

            Examples:
              tollgate audit verify
              tollgate audit verify --expect 1042:5f0c...
            """)

    @Option(name: .long, help: ArgumentHelp("A head printed earlier, position:chain, that the seals must still contain.", valueName: "head"))
    var expect: String?

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws { _ = try expectation() }

    func expectation() throws -> (position: Int64, chain: String)? {
        guard let expect else { return nil }
        let parts = expect.split(separator: ":")
        guard parts.count == 2, let position = Int64(parts[0]), parts[1].count == 64, Hex.bytes(String(parts[1])) != nil else {
            throw ValidationError("--expect must be position:chain as `audit verify` prints it (a number, a colon and 64 hex digits)")
        }
        return (position, parts[1].lowercased())
    }

    func run() async throws {
        let started = ContinuousClock.now
        let expected = try expectation()
        let report = try await database.run(logger: logging.makeLogger("tollgate")) { client, _ in
            try await AuditVerifier(client: client).verify(expect: expected)
        }
        let seconds = Double(started.duration(to: .now).components.attoseconds) / 1e18 + Double(started.duration(to: .now).components.seconds)
        print("checked \(report.checked) sealed events in \(String(format: "%.2f", seconds)) s; \(report.unsealed) not sealed yet")
        print("head \(report.head ?? "none (nothing sealed yet)")")
        if let met = report.expectationMet {
            print(
                met ? "the expected head is in the chain" : "BROKEN: the expected head \(expect ?? "") is not in the chain: the seals were rewritten")
        }
        if let first = report.breaks.first {
            print("BROKEN: \(report.breaks.count) break(s); the first: \(first)")
            for item in report.breaks.dropFirst().prefix(19) { print("  then: \(item)") }
        }
        print("checked \(report.approvalsChecked) approved or used approvals against the log")
        for item in report.approvalBreaks.prefix(50) { print("BROKEN: \(item)") }
        if report.approvalBreaks.count > 50 { print("  and \(report.approvalBreaks.count - 50) more approvals") }
        if !report.breaks.isEmpty || report.expectationMet == false || !report.approvalBreaks.isEmpty { throw ExitCode(1) }
        print("OK: the log matches its seals, and every approval its decisions")
    }
}

struct AuditWhatIfCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "what-if",
        abstract: "Replay the recorded calls against another policy and list the decisions that would change.",
        discussion: """
            Each recorded call of the server is decided again by the new policy, in order and at its original time, \
            with rate limits counted afresh as the new policy would have counted them. Calls whose arguments the \
            log kept only as a hash (store_arguments: hash or keys) are decided as if they had none, and marked.

            Examples:
              tollgate audit what-if --policy policies/stripe-next.yaml --server stripe --since 7d
            """)

    @Option(name: .long, help: ArgumentHelp("The policy to try (JSON or YAML).", valueName: "file"))
    var policy: String

    @OptionGroup var filter: AuditFilterOptions

    @Option(name: .long, help: "table (for people) or jsonl (one JSON object per changed decision, then a summary object).")
    var format: AuditOutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let compiled: CompiledPolicy
        do {
            compiled = try PolicyLoader.load(try PolicyFile.read(policy), fileName: policy)
        } catch let error as SourceValidationError {
            PolicyFile.printError(error.description)
            throw ExitCode(1)
        }
        let calls = try await database.run(logger: logging.makeLogger("tollgate")) { _, store in
            try await AuditTrail.read(store: store, filter: try filter.filter())
        }
        let servers = Set(calls.map(\.decided.server))
        if filter.server == nil, servers.count > 1 {
            throw ValidationError(
                "the log has calls to several servers (\(servers.sorted().joined(separator: ", "))); a policy is for one: pass --server")
        }
        let result = WhatIf.run(calls, policy: compiled)
        switch format {
        case .jsonl:
            for change in result.changes { print(change.json.canonicalJSON) }
            let summary: JSONValue = [
                "replayed": .number(Double(result.replayed)), "changed": .number(Double(result.changes.count)),
                "without_arguments": .number(Double(result.withoutArguments)),
                "transitions": .object(result.transitions.mapValues { .number(Double($0)) }), "policy_hash": .string(compiled.contentHash),
            ]
            print(JSONValue.object(["summary": summary]).canonicalJSON)
        case .table:
            if !result.changes.isEmpty {
                var rows = [["DECIDED", "AGENT", "TOOL", "BEFORE", "AFTER", "NEW RULE", "NOTE"]]
                for change in result.changes {
                    rows.append([
                        EventCoding.timestamp(change.call.decided.decidedAt), change.call.decided.agent, change.call.decided.tool,
                        "\(change.call.decided.decision) (\(change.call.decided.rule))", change.after, change.afterRule,
                        change.withoutArguments ? "arguments not kept" : "",
                    ])
                }
                print(TextTable.render(rows))
                print()
            }
            print("\(result.replayed) calls replayed, \(result.changes.count) decisions would change")
            for (transition, count) in result.transitions.sorted(by: { $0.key < $1.key }) { print("  \(transition): \(count)") }
            if result.withoutArguments > 0 {
                print("\(result.withoutArguments) calls had no stored arguments; their conditions were evaluated as if the arguments were empty")
            }
        }
    }
}

/// Columns padded to their widest cell, two spaces apart.
enum TextTable {
    /// The rows as aligned columns, with invisible characters (bidirectional controls, zero-width and control
    /// characters) in the cells escaped.
    static func render(_ rows: [[String]]) -> String {
        let rows = rows.map { $0.map { $0.escapingInvisibles() } }
        var widths: [Int] = []
        for row in rows {
            for (index, cell) in row.enumerated() {
                if index >= widths.count { widths.append(0) }
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
