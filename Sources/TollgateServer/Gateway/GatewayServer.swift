import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TollgateCore
import TollgateMCP
import TollgatePostgres
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

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
        /// The file `config` was read from: its agents, reviewers and webhooks are reloaded when it changes or on SIGHUP.
        public var configFile: String?

        public init(
            host: String = "127.0.0.1", port: Int = 8420, database: DatabaseConnector = DatabaseConnector(connectionString: nil, dataDirectory: nil),
            config: GatewayConfig? = nil, configFile: String? = nil
        ) {
            self.host = host
            self.port = port
            self.database = database
            self.config = config
            self.configFile = configFile
        }
    }

    public let settings: Settings

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The projections `serve` keeps up to date; the webhook outbox queues deliveries for the configuration's endpoints,
    /// with links under `baseURL`.
    public static func projections(config: GatewayConfig? = nil, baseURL: String = "http://127.0.0.1:8420") -> [any Projection] {
        projections(config: config, live: nil, baseURL: baseURL)
    }

    /// The projections, the outbox queueing for the webhooks `live` has in force at each event (reloaded), when given.
    static func projections(config: GatewayConfig?, live: LiveConfig?, baseURL: String) -> [any Projection] {
        let fixed = config?.webhooks ?? []
        return [
            StreamSummaryProjection(), ApprovalsProjection(), EventSealProjection(), DecisionsProjection(), InventoryProjection(),
            WebhookOutboxProjection(
                endpoints: { live?.snapshot.webhooks ?? fixed }, baseURL: config?.publicURL ?? baseURL, interactive: config?.slack != nil),
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
            // The agents, reviewers and webhooks in force, reloaded from `configFile` (docs/operating.md, "Reloading").
            let live = LiveConfig(config)
            let runner = ProjectionRunner(
                store: store, projections: Self.projections(config: config, live: live, baseURL: "http://\(settings.host):\(settings.port)"),
                logger: logger)
            let webhooks = WebhookDispatcher(
                endpoints: { live.snapshot.webhooks }, store: store, http: WebhookDispatcher.makeClient(), logger: logger)
            let gateway = Gateway(config: config, store: store, live: live, configFile: settings.configFile, logger: logger)
            let metrics = gateway.metrics
            runner.observeHorizon { metrics.logHorizonHeld($0) }
            let app = makeApplication(client: database.client, readiness: readiness, gateway: gateway, logger: logger)
            // Traces (`tracing:`): the exporter runs beside the rest, and is stopped last so the last spans go out.
            let traces = try GatewayTracing.bootstrap(config.tracing, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: (traces.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
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
        ApprovalRoutes(book: gateway.approvals.book, live: gateway.live, logger: logger).register(on: router)
        ReviewerPage(gateway: gateway, logger: logger).register(on: router)
        InventoryRoutes(
            approvals: ApprovalRoutes(book: gateway.approvals.book, live: gateway.live, logger: logger), policies: gateway.policies,
            recorder: gateway.gate.inventory, logger: logger
        ).register(on: router)
        if let slack = gateway.config.slack {
            SlackInteractionRoutes(
                config: slack, book: gateway.approvals.book, live: gateway.live,
                baseURL: gateway.config.publicURL ?? "http://\(settings.host):\(settings.port)", logger: logger
            ).register(on: router)
        }
        let metrics = gateway.metrics
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
        let hangUps = gateway.routes.hangUps
        let connections = Self.connectionGuard(limits: gateway.config.limits, metrics: metrics, logger: logger)
        return Application(
            router: router,
            // Each connection's phase has its deadline and the connections their cap (ConnectionGuard). A request answered
            // before its body was read (a 413, a 401) has the rest of its body read and dropped, so that a client that
            // reads only once it has sent everything gets the answer.
            server: .http1(configuration: .init(additionalChannelHandlers: [connections.handler(), hangUps.watcher(), UnreadBodyDrain()])),
            // A backlog for bursts of connections (the kernel caps it at net.core.somaxconn).
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "tollgate", backlog: 4096),
            logger: logger)
    }
}

extension GatewayServer {
    /// The connection bounds of `limits`, with the cap at most half the open-file limit (raised to its hard limit
    /// first): the other half is left for upstream connections, stdio children's pipes and the database.
    static func connectionGuard(limits: GatewayLimits, metrics: GatewayMetrics, logger: Logger) -> ConnectionGuard {
        let files = raiseOpenFileLimit()
        var cap = limits.maxConnections
        if let files, cap > files / 2 {
            cap = max(16, files / 2)
            logger.warning(
                "limits.max_connections is more than half the open-file limit: the cap is lowered",
                metadata: ["max_connections": "\(limits.maxConnections)", "open_files": "\(files)", "cap": "\(cap)"])
        }
        func amount(_ duration: Duration) -> TimeAmount {
            .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        }
        return ConnectionGuard(
            settings: .init(
                maxConnections: cap, headerTimeout: amount(limits.headerTimeout), bodyTimeout: amount(limits.bodyTimeout),
                idleTimeout: amount(limits.connectionIdleTimeout)),
            metrics: metrics, logger: logger)
    }

    /// Raises the soft limit on open files to the hard one; returns the soft limit then in force (nil if unknown).
    static func raiseOpenFileLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            // An unlimited hard limit is not a number of files: 1,048,576 (Linux's default nr_open) is.
            raised.rlim_cur = min(limit.rlim_max, 1 << 20)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur == rlim_t.max ? nil : Int(clamping: limit.rlim_cur)
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
