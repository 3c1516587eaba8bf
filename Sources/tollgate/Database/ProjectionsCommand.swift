import ArgumentParser
import Foundation
import TollgateCore
import TollgatePostgres
import TollgateServer

/// `tollgate projections`: the tables computed from the log.
struct ProjectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Show where each projection stands, and rebuild them from the log.",
        subcommands: [ProjectionsStatusCommand.self, ProjectionsRebuildCommand.self]
    )
}

struct ProjectionsStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Each projection's checkpoint, when it last moved, and how many events lie beyond it (its lag).")

    @Option(name: .long, help: "table or json.")
    var format: ApprovalsOutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.makeLogger("tollgate")
        let statuses = try await database.run(logger: logger) { _, store in
            try await ProjectionRunner(store: store, projections: GatewayServer.projections(), logger: logger).status()
        }
        switch format {
        case .json:
            print(
                JSONValue.array(
                    statuses.map {
                        [
                            "name": .string($0.name), "checkpoint": .string($0.checkpoint.description), "lag": .number(Double($0.lag)),
                            "updated_at": $0.updatedAt.map { .string(EventCoding.timestamp($0)) } ?? .null,
                        ]
                    }
                ).canonicalJSON)
        case .table:
            var rows = [["PROJECTION", "CHECKPOINT", "LAG", "UPDATED"]]
            for status in statuses {
                rows.append([status.name, status.checkpoint.description, String(status.lag), status.updatedAt.map(EventCoding.timestamp) ?? "never"])
            }
            print(TextTable.render(rows))
        }
    }
}

struct ProjectionsRebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Empty a projection and replay the whole log into it (every projection but the seal when no name is given).",
        discussion: """
            Each rebuild is one transaction: readers (and running gateways) see the old rows until it commits, then \
            the new ones. The seal is never rebuilt: it is what `tollgate audit verify` checks the log against.

            The rate windows (`rate_windows`) are written with each decision rather than by the projector, and are \
            recomputed from the log all the same; calls with limits wait while they are.

            Examples:
              tollgate projections rebuild approvals
              tollgate projections rebuild rate_windows
              tollgate projections rebuild
            """)

    /// The rate windows: rebuilt from the log like a projection, but written with each decision, not by the projector.
    static let rateWindows = "rate_windows"

    @Argument(help: "The projection to rebuild: streams, approvals, webhooks, decisions, rate_windows (default: all of them).")
    var name: String?

    @OptionGroup var configuration: ConfigOptions

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.makeLogger("tollgate")
        let config = try configuration.load()
        let projections = GatewayServer.projections(config: config, baseURL: "http://\(config?.listen ?? "127.0.0.1:8420")")
        let names = name.map { [$0] } ?? projections.map(\.name).filter { $0 != "seal" } + [Self.rateWindows]
        do {
            if let name, name != Self.rateWindows, !projections.contains(where: { $0.name == name }) {
                throw ProjectionError.unknownProjection(name: name, known: projections.map(\.name) + [Self.rateWindows])
            }
            try await database.run(logger: logger) { _, store in
                let runner = ProjectionRunner(store: store, projections: projections, logger: logger)
                for name in names {
                    let started = ContinuousClock.now
                    let replayed =
                        name == Self.rateWindows
                        ? try await store.client.withTransaction { try RateWindowStore.rebuild(on: $0) } : try await runner.rebuild(name)
                    let elapsed = started.duration(to: .now)
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                    print("\(name): replayed \(replayed) events in \(String(format: "%.2f", seconds)) s")
                }
            }
        } catch let error as ProjectionError {
            PolicyFile.printError("error: \(error.description)")
            throw ExitCode(64)
        } catch let error as AuditError {
            PolicyFile.printError("error: \(error.description)")
            throw ExitCode(64)
        }
    }
}
