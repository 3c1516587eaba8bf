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

    @Option(name: .long, help: ArgumentHelp("Address and port to listen on (default: $TOLLGATE_LISTEN, else 127.0.0.1:8420).", valueName: "host:port"))
    var listen: String?

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let address = try ListenAddress(listen ?? ProcessInfo.processInfo.environment["TOLLGATE_LISTEN"] ?? "127.0.0.1:8420")
        let logger = logging.makeLogger("tollgate")
        let server = GatewayServer(settings: .init(host: address.host, port: address.port, database: database.connector))
        try await server.run(logger: logger)
    }
}

/// `host:port`, `[v6]:port` or `:port` (all interfaces).
struct ListenAddress: Equatable {
    var host: String
    var port: Int

    init(_ text: String) throws {
        let message = "--listen must be host:port, [ipv6]:port or :port with a port from 1 to 65535; got \"\(text.prefix(100))\""
        guard let colon = text.lastIndex(of: ":"), text.count <= 300 else { throw ValidationError(message) }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { throw ValidationError(message) }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }) else { throw ValidationError(message) }
        self.host = host
        self.port = port
    }
}
