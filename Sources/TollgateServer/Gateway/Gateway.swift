import Foundation
import Logging
import ServiceLifecycle
import TollgateCore
import TollgateMCP
import TollgatePostgres
import UnixSignals

/// The MCP gateway as a service: the policies (reloaded when a file changes or on SIGHUP), the gate, the relay
/// sessions and their routes. On shutdown it closes every session, which stops every upstream child process.
final class Gateway: Service, Sendable {
    let config: GatewayConfig
    let policies: PolicyBook
    let metrics: GatewayMetrics
    let registry: SessionRegistry
    let routes: MCPRoutes
    let gate: PolicyGate
    let stateless: [String: StatelessRelay]
    let approvals: ApprovalDesk
    /// The agents, reviewers and webhooks in force; `config`'s are those the gateway started with.
    let live: LiveConfig
    /// Reloads `live` from the configuration file (nil: the configuration came from no file).
    let reloader: ConfigReloader?
    private let http: UpstreamHTTPClients
    private let logger: Logger
    /// The log on connections that commit asynchronously, for `commit: async` decisions; nil when no server has one.
    private let asyncStore: EventStore?

    init(
        config: GatewayConfig, store: EventStore, metrics: GatewayMetrics = GatewayMetrics(), live: LiveConfig? = nil, configFile: String? = nil,
        logger: Logger
    ) {
        self.config = config
        self.logger = logger
        self.metrics = metrics
        let live = live ?? LiveConfig(config)
        self.live = live
        reloader = configFile.map { ConfigReloader(path: $0, started: config, live: live, logger: logger) }
        var files: [String: String] = [:]
        var storage: [String: ArgumentRedaction] = [:]
        for server in config.servers {
            files[server.name] = server.policyPath
            storage[server.name] = server.argumentRedaction
        }
        policies = PolicyBook(files: files, logger: logger)
        policies.loadAll()
        let book = ApprovalBook(store: store)
        approvals = ApprovalDesk(book: book, waiters: ApprovalWaiters(book: book, maxHeld: config.limits.maxHeldCalls, logger: logger))
        // `commit: async` (docs/gateway.md, "When a decision is on disk"): those decisions go through a pool of their own
        // whose connections commit asynchronously; everything else stays on the durable one.
        var commits: [String: CommitChoice] = [:]
        for server in config.servers where server.commitChoice.anyAsync { commits[server.name] = server.commitChoice }
        if commits.isEmpty {
            asyncStore = nil
        } else {
            var asynchronous = store.client.configuration
            asynchronous.asynchronousCommit = true
            asyncStore = EventStore(
                client: PostgresClient(configuration: asynchronous, options: .init(maxConnections: 4), logger: logger), logger: logger)
        }
        gate = PolicyGate(
            policies: policies, recorder: ToolCallRecorder(store: store), storage: storage, metrics: metrics, approvals: approvals,
            limits: config.limits, inventory: ToolDefinitionRecorder(store: store, firstListing: policies.firstListing, logger: logger),
            asynchronous: asyncStore.map { (ToolCallRecorder(store: $0), commits) }, logger: logger)
        registry = SessionRegistry(
            maxSessions: config.limits.maxSessions, maxSessionsPerAgent: config.limits.maxSessionsPerAgent,
            idleTimeout: config.limits.sessionIdleTimeout, metrics: metrics, logger: logger)
        http = UpstreamHTTPClients()
        var sessionOptions = RelaySession.Options()
        sessionOptions.requestTimeout = config.limits.upstreamTimeout
        BufferBudget.process.limit = config.limits.maxBufferedBytes
        sessionOptions.listenStreams = ListenStreamCap(limit: config.limits.maxListenStreamsPerAgent)
        let upstreams = UpstreamFactory(clients: http, maxMessageBytes: 16 << 20, logger: logger)
        var stateless: [String: StatelessRelay] = [:]
        for server in config.servers {
            stateless[server.name] = StatelessRelay(
                server: server.name, gate: gate, options: sessionOptions, connect: upstreams.connector(for: server), logger: logger)
        }
        self.stateless = stateless
        routes = MCPRoutes(
            servers: Dictionary(config.servers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first }),
            live: live, allowedOrigins: Set(config.allowedOrigins), maxBodyBytes: config.limits.maxBodyBytes,
            registry: registry, stateless: stateless, gate: gate, upstreams: upstreams,
            sessionOptions: sessionOptions, logger: logger)
        let registry = registry
        let relays = stateless
        // An agent removed, or whose key or grant changed: its sessions end (every request in them answered).
        let statelessCalls = routes.statelessCalls
        reloader?.setOnAgentsEnded { agents in
            await registry.end(agents: agents)
            await statelessCalls.cancel(agents: agents)
        }
        policies.setOnChange { server in
            // Tell the server's agents to list tools again: hidden tools may have changed (sessions, and stateless
            // agents' subscriptions/listen streams).
            Task {
                let message = JSONRPCWriter.notification(method: "notifications/tools/list_changed")
                for session in await registry.sessions(server: server) { await session.notifyAgent(message) }
                await relays[server]?.notifyListeners()
            }
        }
    }

    func run() async throws {
        let policies = policies
        let registry = registry
        let approvals = approvals
        let reloader = reloader
        let logger = logger
        await withDiscardingTaskGroup { group in
            group.addTask { try? await approvals.waiters.run() }
            group.addTask {
                // The expiry timer: a pending request past its expiry gets its `ApprovalExpired`.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    await approvals.expireDue(logger: logger)
                }
            }
            group.addTask {
                // A changed policy file is applied once it has settled (docs/gateway.md, "Reloading policies").
                await policies.watch()
            }
            if let reloader {
                // Agents, reviewers and webhooks, likewise (docs/operating.md, "Reloading").
                group.addTask { await reloader.watch() }
            }
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    policies.reloadChanged(force: true)
                    await reloader?.reloadChanged(force: true)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: registry.sweepInterval)
                    await registry.sweep()
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await registry.closeAll()
        for relay in stateless.values { await relay.close() }
        // Outcomes kept while the database was away (and those of the calls just closed): written if it answers in time.
        await gate.outcomes.flush()
        await gate.refusals.flush()
        if let asyncStore {
            asyncStore.stop()
            await asyncStore.client.shutdown()
        }
        logger.info("gateway stopped; every session closed")
    }

    func shutdownHTTPClient() async {
        await http.shutdown()
    }
}
