import AsyncHTTPClient
import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgateMCP
import TollgatePostgres

#if canImport(Glibc)
    import Glibc
#endif

/// `tollgate stdio <server>`: the gateway for a client that can only spawn a command. One relay session over this
/// process's stdin and stdout (newline-delimited JSON-RPC), with the same policy, log and database as `serve`.
///
/// The agent is the one whose key is in `TOLLGATE_AGENT_KEY`, checked against the configuration like a bearer key.
/// Logs go to stderr, never stdout (which carries the protocol).
public struct StdioFront: Sendable {
    public let config: GatewayConfig
    public let server: String
    public let agentKey: String
    public let database: DatabaseConnector

    public init(config: GatewayConfig, server: String, agentKey: String, database: DatabaseConnector) {
        self.config = config
        self.server = server
        self.agentKey = agentKey
        self.database = database
    }

    /// Runs until stdin ends; returns the process's exit code.
    public func run(logger: Logger) async throws -> Int32 {
        guard let server = config.server(named: server) else {
            throw InventoryError("no server named `\(self.server)` in the configuration")
        }
        guard let agent = AgentDirectory(config.agents).agent(forKey: agentKey) else {
            throw InventoryError("TOLLGATE_AGENT_KEY is not the key of any agent in the configuration")
        }
        try StdioServerUsers.check([server], logger: logger)
        let database = try await database.open(logger: logger)
        do {
            try await Migrator(logger: logger).migrate(database.client)
            let store = EventStore(client: database.client, logger: logger)
            defer { store.stop() }
            let metrics = GatewayMetrics()
            let policies = PolicyBook(files: [server.name: server.policyPath], logger: logger)
            policies.loadAll()
            let book = ApprovalBook(store: store)
            let approvals = ApprovalDesk(book: book, waiters: ApprovalWaiters(book: book, maxHeld: config.limits.maxHeldCalls, logger: logger))
            let gate = PolicyGate(
                policies: policies, recorder: ToolCallRecorder(store: store), storage: [server.name: server.argumentRedaction], metrics: metrics,
                approvals: approvals, limits: config.limits,
                inventory: ToolDefinitionRecorder(store: store, firstListing: policies.firstListing, logger: logger), logger: logger)
            let http = UpstreamHTTPClients()
            let factory = UpstreamFactory(clients: http, maxMessageBytes: 16 << 20, logger: logger)
            var options = RelaySession.Options()
            options.requestTimeout = config.limits.upstreamTimeout
            BufferBudget.process.limit = config.limits.maxBufferedBytes
            options.listenStreams = ListenStreamCap(limit: config.limits.maxListenStreamsPerAgent)
            let identity = SessionIdentity(
                agent: agent.id, grant: agent.grant, session: "stdio-" + SessionRegistry.newSessionID(), server: server.name)
            let session = RelaySession(identity: identity, gate: gate, options: options, connect: factory.connector(for: server), logger: logger)
            let waiting = Task { try? await approvals.waiters.run() }
            try await relay(session, policies: policies, maxBytes: config.limits.maxBodyBytes)
            waiting.cancel()
            await session.close()
            await gate.outcomes.flush()
            await gate.refusals.flush()
            await http.shutdown()
        } catch {
            await database.close()
            throw error
        }
        await database.close()
        return 0
    }

    private func relay(_ session: RelaySession, policies: PolicyBook, maxBytes: Int) async throws {
        let output = StdoutWriter()
        policies.setOnChange { _ in
            Task { await session.notifyAgent(JSONRPCWriter.notification(method: "notifications/tools/list_changed")) }
        }
        let listener = await session.listen()
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await message in listener { output.write(message) }
            }
            group.addTask { await policies.watch() }
            // Requests in flight when stdin ends are answered before the session closes (each within its timeout).
            await withDiscardingTaskGroup { inFlight in
                for await line in StdinLines(maxBytes: maxBytes).lines() {
                    switch line {
                    case .tooLong:
                        output.write(
                            JSONRPCWriter.error(id: nil, code: -32600, message: "Invalid Request: a message may have at most \(maxBytes) bytes"))
                    case .line(let bytes):
                        guard bytes.contains(where: { $0 != 0x20 && $0 != 0x09 }) else { continue }
                        let message: JSONRPCMessage
                        do {
                            message = try JSONRPCMessage(parsing: bytes)
                        } catch let error as JSONRPCMessage.ParseError {
                            output.write(JSONRPCWriter.error(id: error.id, code: error.code, message: error.message))
                            continue
                        } catch {
                            continue
                        }
                        switch await session.receive(message) {
                        case .accepted: break
                        case .immediate(let reply): output.write(reply)
                        case .stream(let replies):
                            inFlight.addTask {
                                for await reply in replies { output.write(reply) }
                            }
                        }
                    }
                }
            }
            group.cancelAll()
        }
    }
}

/// Writes whole lines to stdout, one at a time.
private final class StdoutWriter: Sendable {
    private let lock = Mutex(())

    func write(_ message: [UInt8]) {
        var line = message.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }
        line.append(0x0A)
        lock.withLock { _ in
            var offset = 0
            while offset < line.count {
                let written = line.withUnsafeBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

/// Lines from stdin, read on a thread of their own.
private struct StdinLines {
    enum Line: Sendable {
        case line([UInt8])
        case tooLong
    }

    let maxBytes: Int

    func lines() -> AsyncStream<Line> {
        let (stream, continuation) = AsyncStream.makeStream(of: Line.self)
        let maxBytes = maxBytes
        let thread = Thread {
            LineReader.forEachLine(of: 0, maxLineBytes: maxBytes) { line, truncated in
                continuation.yield(truncated ? .tooLong : .line(line))
            }
            continuation.finish()
        }
        thread.name = "tollgate-stdin"
        thread.start()
        return stream
    }
}
