import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TollgateCore
import TollgateMCP
import TollgatePostgres
import UnixSignals

/// The composition root of `tollgate serve`: opens the database (the embedded cluster when none is configured),
/// applies migrations, and runs the HTTP server and the projector as services in one `ServiceGroup`, so SIGINT
/// and SIGTERM stop them in order; then closes the pool and stops the embedded cluster if it started it.
///
/// ```swift
/// try await GatewayServer(settings: .init(host: "127.0.0.1", port: 8420)).run(logger: logger)
/// ```
public struct GatewayServer: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var database: DatabaseConnector
        /// The servers, agents and limits; without one the gateway relays nothing (health and metrics only).
        public var config: GatewayConfig?

        public init(
            host: String = "127.0.0.1", port: Int = 8420, database: DatabaseConnector = DatabaseConnector(connectionString: nil, dataDirectory: nil),
            config: GatewayConfig? = nil
        ) {
            self.host = host
            self.port = port
            self.database = database
            self.config = config
        }
    }

    public let settings: Settings

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The projections `serve` keeps up to date; the webhook outbox queues deliveries for the configuration's endpoints,
    /// with links under `baseURL`.
    public static func projections(config: GatewayConfig? = nil, baseURL: String = "http://127.0.0.1:8420") -> [any Projection] {
        [
            StreamSummaryProjection(), ApprovalsProjection(), EventSealProjection(),
            WebhookOutboxProjection(endpoints: config?.webhooks ?? [], baseURL: config?.publicURL ?? baseURL),
        ]
    }

    /// Runs until SIGINT or SIGTERM.
    public func run(logger: Logger) async throws {
        try StdioServerUsers.check(settings.config?.servers ?? [], logger: logger)
        let database = try await settings.database.open(logger: logger)
        do {
            let applied = try await Migrator(logger: logger).migrate(database.client)
            if !applied.isEmpty { logger.info("database migrated", metadata: ["applied": "\(applied.joined(separator: ", "))"]) }
            let store = EventStore(client: database.client, logger: logger)
            defer { store.stop() }
            let readiness = Readiness(waitingFor: ["projector"])
            let config = settings.config ?? GatewayConfig()
            let runner = ProjectionRunner(
                store: store, projections: Self.projections(config: config, baseURL: "http://\(settings.host):\(settings.port)"), logger: logger)
            let webhooks = WebhookDispatcher(endpoints: config.webhooks, store: store, http: WebhookDispatcher.makeClient(), logger: logger)
            let gateway = Gateway(config: settings.config ?? GatewayConfig(), store: store, logger: logger)
            let app = makeApplication(client: database.client, readiness: readiness, gateway: gateway, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: [
                        .init(service: ReadyWhenRunning(runner, part: "projector", readiness: readiness)),
                        .init(service: gateway),
                        .init(service: webhooks),
                        .init(service: app),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            // The HTTP clients are shut down asynchronously: this task may run on one of their event loops.
            do {
                try await group.run()
            } catch {
                await gateway.shutdownHTTPClient()
                await webhooks.shutdownClient()
                throw error
            }
            await gateway.shutdownHTTPClient()
            await webhooks.shutdownClient()
        } catch {
            await database.close()
            throw error
        }
        await database.close()
        logger.info("stopped")
    }

    func makeApplication(client: PostgresClient, readiness: Readiness, gateway: Gateway, logger: Logger) -> some ApplicationProtocol {
        let router = Router(context: GatewayRequestContext.self)
        HealthRoutes(client: client, readiness: readiness).register(on: router)
        gateway.routes.register(on: router)
        ApprovalRoutes(book: gateway.approvals.book, reviewers: ReviewerDirectory(gateway.config.reviewers), logger: logger).register(on: router)
        let metrics = gateway.metrics
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
        let hangUps = gateway.routes.hangUps
        return Application(
            router: router,
            // A request answered before its body was read (a 413, a 401) has the rest of its body read and dropped, so
            // that a client that reads only once it has sent everything gets the answer.
            server: .http1(configuration: .init(additionalChannelHandlers: [hangUps.watcher(), UnreadBodyDrain()])),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "tollgate"),
            logger: logger)
    }
}

/// Runs a service and marks `part` ready while it runs.
struct ReadyWhenRunning<Wrapped: Service>: Service {
    let wrapped: Wrapped
    let part: String
    let readiness: Readiness

    init(_ wrapped: Wrapped, part: String, readiness: Readiness) {
        self.wrapped = wrapped
        self.part = part
        self.readiness = readiness
    }

    func run() async throws {
        readiness.set(part, ready: true)
        defer { readiness.set(part, ready: false) }
        try await wrapped.run()
    }
}
