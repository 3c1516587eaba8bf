import ArgumentParser
import Foundation
import TollgateServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway.",
        discussion: """
            Opens the database (starting the embedded cluster when none is configured), applies migrations, keeps \
            the projections up to date and serves HTTP: /healthz answers while the process runs, /readyz once the \
            database answers and the projector runs. SIGINT or SIGTERM stops everything in order; an embedded \
            cluster that this process started is stopped too.

            Examples:
              tollgate serve
              tollgate serve --listen 0.0.0.0:8420 --database postgresql://tollgate@db/tollgate
            """
    )

    @Option(
        name: .long, help: ArgumentHelp("Address and port to listen on (default: $TOLLGATE_LISTEN, else 127.0.0.1:8420).", valueName: "host:port"))
    var listen: String?

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try address()
    }

    func address() throws -> ListenAddress {
        do {
            return try ListenAddress(listen ?? ProcessInfo.processInfo.environment["TOLLGATE_LISTEN"] ?? "127.0.0.1:8420")
        } catch {
            throw ValidationError("--listen: \(error)")
        }
    }

    func run() async throws {
        let address = try address()
        let logger = logging.makeLogger("tollgate")
        let server = GatewayServer(settings: .init(host: address.host, port: address.port, database: database.connector))
        try await server.run(logger: logger)
    }
}
