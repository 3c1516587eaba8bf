import ArgumentParser
import Foundation
import TollgatePostgres
import TollgateServer

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Read the event log.",
        subcommands: [EventsTailCommand.self]
    )
}

struct EventsTailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print the latest events, and with --follow every new one as it commits.",
        discussion: """
            Events come in log order (the order in which a reader can be sure no earlier one is still to come). \
            --format json prints one JSON object per line, for scripts and jq.

            Examples:
              tollgate events tail
              tollgate events tail --follow --stream call-5b0c...
              tollgate events tail -n 100 --format json | jq .type
            """
    )

    @Option(name: [.customShort("n"), .customLong("lines")], help: "How many of the latest events to print first (0 to 10000).")
    var lines = 20

    @Flag(name: .shortAndLong, help: "Keep running and print new events as they are committed.")
    var follow = false

    @Option(name: .long, help: ArgumentHelp("Only events of this stream (e.g. call-<uuid>).", valueName: "stream-id"))
    var stream: String?

    @Option(name: .long, help: "table (for people) or json (one object per line).")
    var format: OutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case table
        case json
    }

    func validate() throws {
        guard (0...10_000).contains(lines) else { throw ValidationError("--lines must be from 0 to 10000, got \(lines)") }
        if let stream, !(1...200).contains(stream.count) {
            throw ValidationError("--stream must be a stream id of 1 to 200 characters")
        }
    }

    func run() async throws {
        let logger = logging.makeLogger("tollgate")
        let open = try await database.connector.open(logger: logger)
        let store = EventStore(client: open.client, logger: logger)
        do {
            try await Migrator(logger: logger).migrate(open.client)
            let latest = try await store.readLatest(limit: lines, stream: stream)
            for event in latest { print(render(event)) }
            if follow {
                let start: LogPosition
                if let last = latest.last { start = last.logPosition } else { start = try await store.headPosition() }
                fflush(nil)
                for try await event in store.subscribe(after: start) where stream == nil || event.streamID == stream {
                    print(render(event))
                    fflush(nil)  // a person or a pipe reading --follow sees each event as it lands
                }
            }
        } catch {
            store.stop()
            await open.close()
            throw error
        }
        store.stop()
        await open.close()
    }

    func render(_ event: RecordedEvent) -> String {
        EventRendering.render(event, json: format == .json)
    }
}
