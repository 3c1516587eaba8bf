import ArgumentParser
import Foundation
import Logging
import TollgateCore
import TollgateServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway.",
        discussion: """
            Opens the database (starting the embedded cluster when none is configured), applies migrations, keeps \
            the projections up to date and serves HTTP: /healthz answers while the process runs, /readyz once the \
            database answers and the projector runs. SIGINT or SIGTERM stops everything in order; an embedded \
            cluster that this process started is stopped too. A changed policy file, or a changed configuration \
            file's agents, reviewers and webhooks, apply within two seconds, or on SIGHUP.

            Examples:
              tollgate serve
              tollgate serve --listen 0.0.0.0:8420 --database postgresql://tollgate@db/tollgate
            """
    )

    @Option(
        name: .long, help: ArgumentHelp("Address and port to listen on (default: $TOLLGATE_LISTEN, else 127.0.0.1:8420).", valueName: "host:port"))
    var listen: String?

    @OptionGroup var configuration: ConfigOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let listen = listen ?? ProcessInfo.processInfo.environment["TOLLGATE_LISTEN"] { _ = try address(listen) }
    }

    func address(_ text: String) throws -> ListenAddress {
        do {
            return try ListenAddress(text)
        } catch {
            throw ValidationError("--listen: \(error)")
        }
    }

    func run() async throws {
        let config = try configuration.load()
        // The command line and the environment win over the file, which wins over the defaults.
        let listen = listen ?? ProcessInfo.processInfo.environment["TOLLGATE_LISTEN"] ?? config?.listen ?? "127.0.0.1:8420"
        let address = try address(listen)
        let logger = logging.makeLogger(
            "tollgate", defaultLevel: config.flatMap { Logger.Level(rawValue: $0.logging.level) } ?? .info, format: config?.logging.format ?? .text)
        let connector = database.gatewayConnector(for: config)
        let server = GatewayServer(
            settings: .init(
                host: address.host, port: address.port, database: connector, config: config, configFile: config == nil ? nil : configuration.path))
        try await server.run(logger: logger)
    }
}
