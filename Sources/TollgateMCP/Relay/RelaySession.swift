import Foundation
import Logging
import TollgateCore

/// One agent's MCP session through the gateway: the messages between one downstream client and one upstream
/// connection, relayed unchanged except where the gate decides.
///
/// Ids are not remapped (the session has its upstream to itself), so `requestId` and `progressToken` references
/// stay valid both ways. The session:
/// - forwards requests, notifications and responses from the agent, and answers requests it refuses itself;
/// - decides every `tools/call` with the gate first (unknown and hidden tools get JSON-RPC error -32602);
/// - removes hidden tools from `tools/list` results;
/// - routes what the upstream sends: a response to the stream of its request, progress to the stream of the request
///   that asked for it, everything else to the agent's listening stream (or, while none is open, to an open request
///   stream, or a small backlog);
/// - restarts a dead upstream on the next request, with backoff, replaying the agent's `initialize`.
///
/// ```swift
/// let session = RelaySession(identity: identity, gate: gate, connect: { try StdioUpstreamConnection.start(command, logger: logger) }, logger: logger)
/// switch await session.receive(message) { case .stream(let replies): ...; case .immediate(let bytes): ...; case .accepted: ... }
/// ```
public actor RelaySession {
    /// What the transport sends back for one message from the agent.
    public enum Reply: Sendable {
        /// Nothing to send back (a notification or a response): HTTP 202.
        case accepted
        /// A single message, answered without the upstream.
        case immediate([UInt8])
        /// The messages for this request, ending with its response.
        case stream(ReplyStream)
    }

    public struct Options: Sendable {
        /// How long a request may wait for the upstream's answer.
        public var requestTimeout: Duration = .seconds(120)
        /// Messages kept for the agent while no stream is open to carry them.
        public var backlogLimit = 256
        public init() {}
    }

    public nonisolated let identity: SessionIdentity
    public nonisolated let id: String
    private let gate: any ToolCallGate
    private let connect: @Sendable () async throws -> any UpstreamConnection
    private let options: Options
    private let logger: Logger

    private var upstream: (any UpstreamConnection)?
    private var starting: Task<any UpstreamConnection, any Error>?
    private var pending: [JSONRPCID: Pending] = [:]
    /// `tools/call` requests being decided (perhaps held for approval) before they go upstream.
    private var deciding: [JSONRPCID: Task<Void, Never>] = [:]
    private var progressRoutes: [JSONRPCID: JSONRPCID] = [:]
    private var listener: AsyncStream<[UInt8]>.Continuation?
    private var listenerGeneration = 0
    private var backlog: [[UInt8]] = []
    private var catalog: [String: ToolDescriptor]?
    /// The gateway's own listing of the upstream's tools under way, which calls that need it wait for together.
    private var catalogLoad: Task<ToolCatalog, Never>?
    private var initializeParams: String?
    private var closed = false
    private var restarts = 0
    private var lastStart: ContinuousClock.Instant = .now
    private var internalCounter = 0
    private var timer = DeadlineTimer()
    public private(set) var lastActivity: ContinuousClock.Instant = .now
    /// The protocol version the upstream answered `initialize` with.
    public private(set) var protocolVersion: String?

    private struct Pending {
        var method: String
        var sink: ReplySink?
        var internalWaiter: CheckedContinuation<JSONRPCMessage?, Never>?
        var progressToken: JSONRPCID?
        var ticket: ToolCallTicket?
        /// When the gateway answers for the upstream that it did not answer in time.
        var deadline: ContinuousClock.Instant
        var isToolList: Bool
        var firstPage: Bool
        /// Whether every message on `sink` reaches the agent (an SSE response), so server messages may travel there.
        var streams = false
    }

    public init(
        identity: SessionIdentity, gate: any ToolCallGate, options: Options = Options(),
        connect: @escaping @Sendable () async throws -> any UpstreamConnection, logger: Logger
    ) {
        self.identity = identity
        self.id = identity.session
        self.gate = gate
        self.options = options
        self.connect = connect
        var logger = logger
        logger[metadataKey: "session"] = "\(identity.session)"
        logger[metadataKey: "server"] = "\(identity.server)"
        logger[metadataKey: "agent"] = "\(identity.agent)"
        self.logger = logger
    }

    /// Whether any request is in flight or a listening stream is open (such a session is not idle).
    public var isBusy: Bool { !pending.isEmpty || !deciding.isEmpty || listener != nil }

    // MARK: - From the agent

    /// Handles one message from the agent. `streaming`: the transport sends every message of a request's stream to the
    /// agent (an SSE response), not just the last (a JSON response); only such streams carry server messages.
    public func receive(_ message: JSONRPCMessage, streaming: Bool = true) async -> Reply {
        lastActivity = .now
        guard !closed else {
            return message.kind == .request
                ? .immediate(JSONRPCWriter.error(id: message.id, code: -32600, message: "Session terminated")) : .accepted
        }
        if let refusal = AgentMethods.refusal(of: message) {
            logger.notice("a message no rule lets through was refused", metadata: ["method": "\(Self.quoted(message.method ?? ""))"])
            return .immediate(refusal)
        }
        switch message.kind {
        case .notification:
            if message.method == "notifications/cancelled", let target = message.paramsID("requestId") {
                cancelledByAgent(target)
            }
            if let upstream { try? await upstream.send(message) }
            return .accepted
        case .response, .error:
            if let upstream { try? await upstream.send(message) }
            return .accepted
        case .request:
            return await request(message, streaming: streaming)
        }
    }

    /// Whether the agent's listening stream (HTTP GET) is open.
    public var hasListener: Bool { listener != nil }

    private func request(_ message: JSONRPCMessage, streaming: Bool) async -> Reply {
        guard let id = message.id, let method = message.method else { return .accepted }
        guard pending[id] == nil, deciding[id] == nil else {
            return .immediate(
                JSONRPCWriter.error(id: id, code: -32600, message: "Invalid Request: the id \(id) is already in use by a request in flight"))
        }
        if method == "server/discover" { return .immediate(Self.discoverRefusal(id: id)) }
        if method == "initialize", let params = message.paramsBytes {
            initializeParams = String(decoding: params, as: UTF8.self)
        }
        if AgentMethods.reads.contains(method) { Self.logRead(message, method: method, logger: logger) }
        let (stream, sink) = ReplyStream.make()
        guard method == "tools/call" else {
            if let refusal = await forward(message, id: id, method: method, ticket: nil, sink: sink, streaming: streaming) {
                return .immediate(refusal)
            }
            return .stream(stream)
        }
        guard streaming else {
            // A JSON response: nothing reaches the agent before the answer, so the decision is made here; in a task of
            // its own, so that the agent's cancellation (`notifications/cancelled`, or its hang-up through `abandon`)
            // stops a call held for approval before anything is forwarded, as on a stream.
            var task: Task<Void, Never>?
            let verdict = await withCheckedContinuation { (continuation: CheckedContinuation<Decision, Never>) in
                let deciding = Task { continuation.resume(returning: await self.decide(message, id: id, progress: nil)) }
                self.deciding[id] = deciding
                task = deciding
            }
            if let task, deciding[id] == task { deciding.removeValue(forKey: id) }
            if (task?.isCancelled ?? false) || closed {
                // A JSON request has an answer even then: the session's end, or the decision's own (a held call's
                // `cancelled` refusal).
                if let answer = await overtaken(verdict, id: id) { return .immediate(answer) }
                if case .reply(let bytes) = verdict { return .immediate(bytes) }
                return .immediate(Self.requestCancelled(id: id))
            }
            switch verdict {
            case .reply(let bytes): return .immediate(bytes)
            case .forward(let ticket):
                if let refusal = await forward(message, id: id, method: method, ticket: ticket, sink: sink, streaming: false) {
                    return .immediate(refusal)
                }
                return .stream(stream)
            }
        }
        // A stream: it opens at once, and the decision (which may hold the call for a human's approval, with progress
        // reports when the agent asked for them) runs beside the session; other requests go on meanwhile.
        let progress = message.progressToken.map { Self.progressReporter(token: $0, sink: sink) }
        deciding[id] = Task {
            await self.decideThenForward(message, id: id, sink: sink, progress: progress)
        }
        return .stream(stream)
    }

    private func decideThenForward(
        _ message: JSONRPCMessage, id: JSONRPCID, sink: ReplySink, progress: (@Sendable (HeldCall.Progress) -> Void)?
    ) async {
        defer { deciding.removeValue(forKey: id) }
        let decision = await decide(message, id: id, progress: progress)
        if Task.isCancelled || closed {
            if let answer = await overtaken(decision, id: id) { sink.answer(answer) } else { sink.finish() }
            return
        }
        switch decision {
        case .reply(let bytes):
            sink.answer(bytes)
        case .forward(let ticket):
            if let refusal = await forward(message, id: id, method: "tools/call", ticket: ticket, sink: sink, streaming: true) {
                sink.answer(refusal)
            }
        }
    }

    /// After a decision that the agent's cancellation (or the session's end) overtook: nothing is forwarded, and a call
    /// it would have forwarded is recorded as cancelled. The session's end is the agent's answer when it was that.
    private func overtaken(_ decision: Decision, id: JSONRPCID) async -> [UInt8]? {
        if case .forward(let ticket) = decision { await gate.complete(ticket, outcome: .cancelled) }
        return closed ? JSONRPCWriter.error(id: id, code: -32600, message: "Session terminated") : nil
    }

    /// The answer to a request the agent cancelled before it was sent, when the transport must give one.
    static func requestCancelled(id: JSONRPCID) -> [UInt8] {
        JSONRPCWriter.error(id: id, code: -32800, message: "Request cancelled")
    }

    /// Sends a request upstream, its answers to go to `sink`; returns the agent's answer instead when it cannot be sent.
    private func forward(
        _ message: JSONRPCMessage, id: JSONRPCID, method: String, ticket: ToolCallTicket?, sink: ReplySink,
        streaming: Bool
    ) async -> [UInt8]? {
        let upstream: any UpstreamConnection
        do {
            upstream = try await liveUpstream()
        } catch {
            if let ticket { await gate.complete(ticket, outcome: .notSent(error.description)) }
            return JSONRPCWriter.error(id: id, code: -32603, message: "The upstream server is unavailable: \(error.description)")
        }
        guard pending[id] == nil, !closed else {
            if let ticket { await gate.complete(ticket, outcome: .notSent("duplicate request id")) }
            return JSONRPCWriter.error(id: id, code: -32600, message: "Invalid Request: the id \(id) is already in use by a request in flight")
        }
        let token = message.progressToken
        pending[id] = Pending(
            method: method, sink: sink, progressToken: token, ticket: ticket, deadline: deadline(),
            isToolList: method == "tools/list", firstPage: message.paramsString("cursor") == nil, streams: streaming)
        if let token { progressRoutes[token] = id }
        do {
            try await upstream.send(message)
        } catch {
            if let entry = pending.removeValue(forKey: id) {
                finish(entry, id: id)
                if let ticket = entry.ticket { await gate.complete(ticket, outcome: .sendFailed(error)) }
            }
            return JSONRPCWriter.error(id: id, code: -32603, message: "The upstream server is unavailable: \(error.description)")
        }
        return nil
    }

    private enum Decision {
        case reply([UInt8])
        case forward(ToolCallTicket)
    }

    private func decide(_ message: JSONRPCMessage, id: JSONRPCID, progress: (@Sendable (HeldCall.Progress) -> Void)?) async -> Decision {
        let catalog = await currentCatalog()
        switch await gate.screen(message, id: id, identity: identity, catalog: catalog, resultType: false, progress: progress) {
        case .answer(let bytes): return .reply(bytes)
        case .forward(let ticket): return .forward(ticket)
        }
    }

    /// Reports a held call's progress to the agent as `notifications/progress` with its own token.
    static func progressReporter(token: JSONRPCID, sink: ReplySink) -> @Sendable (HeldCall.Progress) -> Void {
        let raw = String(decoding: token.raw, as: UTF8.self)
        return { progress in
            let params =
                #"{"progressToken":\#(raw),"progress":\#(JSONValue.number(progress.progress).canonicalJSON),"#
                + #""total":\#(JSONValue.number(progress.total).canonicalJSON),"message":\#(JSONValue.string(progress.message).canonicalJSON)}"#
            sink.send(JSONRPCWriter.notification(method: "notifications/progress", params: params))
        }
    }

    private func cancelledByAgent(_ target: JSONRPCID) {
        if let task = deciding.removeValue(forKey: target) { task.cancel() }
        guard let entry = pending.removeValue(forKey: target) else { return }
        finish(entry, id: target)
        if let ticket = entry.ticket {
            let gate = gate
            Task { await gate.complete(ticket, outcome: .cancelled) }
        }
    }

    /// The agent went away while `id` was in flight (its HTTP connection closed): the request is cancelled upstream,
    /// as if the agent had sent `notifications/cancelled`.
    public func abandon(_ id: JSONRPCID) async {
        if let task = deciding.removeValue(forKey: id) { task.cancel() }
        guard pending[id] != nil else { return }
        cancelledByAgent(id)
        await upstream?.sendCancellation(of: id, reason: "the client disconnected")
    }

    /// Opens the agent's listening stream (HTTP GET): server-initiated messages go there. A second one replaces
    /// the first. Messages kept while none was open are sent first.
    public func listen() -> AsyncStream<[UInt8]> { openListener().messages }

    /// `listen()`, with the listener's generation, for `closeListener`.
    public func openListener() -> (messages: AsyncStream<[UInt8]>, generation: Int) {
        listenerGeneration += 1
        listener?.finish()
        let generation = listenerGeneration
        let (stream, sink) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(options.backlogLimit))
        for message in backlog { sink.yield(message) }
        backlog.removeAll()
        listener = sink
        sink.onTermination = { [weak self] _ in
            Task { await self?.listenerEnded(generation) }
        }
        return (stream, generation)
    }

    /// The agent hung up its listening stream `generation`: it is ended, and messages for the agent are kept in the
    /// backlog for its next GET instead of being written to a connection that is gone. A newer stream is left alone.
    public func closeListener(_ generation: Int) {
        guard generation == listenerGeneration, let listener else { return }
        self.listener = nil
        listener.finish()
    }

    /// Forgets the listener when its stream ends, unless a newer one has replaced it.
    private func listenerEnded(_ generation: Int) {
        if generation == listenerGeneration { listener = nil }
    }

    /// Sends a message of the gateway's own to the agent (`notifications/tools/list_changed` after a policy reload).
    public func notifyAgent(_ message: [UInt8]) {
        deliverToAgent(message)
    }

    /// Ends the session: every open stream, and the upstream connection.
    public func close() async {
        guard !closed else { return }
        closed = true
        for task in deciding.values { task.cancel() }
        for (id, entry) in pending {
            entry.internalWaiter?.resume(returning: nil)
            entry.sink?.answer(JSONRPCWriter.error(id: id, code: -32600, message: "Session terminated"))
            finish(entry, id: id)
            if let ticket = entry.ticket { await gate.complete(ticket, outcome: .cancelled) }
        }
        pending.removeAll()
        timer.cancel()
        listener?.finish()
        listener = nil
        await upstream?.close()
        upstream = nil
    }

    // MARK: - The upstream

    /// The upstream connection, started (or restarted) if there is none. Requests that arrive while a start is under
    /// way wait for it, so none is sent before the handshake is replayed.
    private func liveUpstream() async throws(UpstreamError) -> any UpstreamConnection {
        if let starting {
            do {
                return try await starting.value
            } catch {
                throw (error as? UpstreamError) ?? UpstreamError("\(error)")
            }
        }
        if let upstream { return upstream }
        let task = Task { () async throws -> any UpstreamConnection in try await self.startUpstream() }
        starting = task
        defer { starting = nil }
        do {
            return try await task.value
        } catch {
            throw (error as? UpstreamError) ?? UpstreamError("\(error)")
        }
    }

    private func startUpstream() async throws(UpstreamError) -> any UpstreamConnection {
        if restarts > 0 {
            // Backoff: 0.2 s, 0.4 s, ... up to 10 s between starts; a connection that lived a minute resets it.
            let delay = Duration.milliseconds(min(10_000, 200 << min(restarts - 1, 6)))
            let wait = lastStart + delay - .now
            if wait > .zero { try? await Task.sleep(for: wait) }
        }
        lastStart = .now
        restarts += 1
        let connection: any UpstreamConnection
        do {
            connection = try await connect()
        } catch let error as UpstreamError {
            throw error
        } catch {
            throw UpstreamError("\(error)")
        }
        upstream = connection
        Task { await self.pump(connection) }
        if restarts > 1, let initializeParams {
            logger.notice("upstream restarted; replaying initialize", metadata: ["restart": "\(restarts - 1)"])
            // A server's start can take seconds (an interpreter, a cold cache): give the handshake at least 30 s.
            let reply = await internalRequest(
                method: "initialize", params: initializeParams, on: connection, limit: max(options.requestTimeout, .seconds(30)))
            guard let reply, reply.kind == .response else {
                // Never leave a connection that missed its handshake in place: the next request starts another.
                if upstream === connection { upstream = nil }
                await connection.close()
                throw UpstreamError("the restarted upstream server did not accept the session's initialize")
            }
            try await connection.send(Self.initializedNotification)
        }
        return connection
    }

    private func pump(_ connection: any UpstreamConnection) async {
        for await event in connection.events {
            switch event {
            case .message(let message):
                await fromUpstream(message)
            case .garbage(let text):
                logger.warning("upstream wrote something that is not JSON-RPC; skipped", metadata: ["output": "\(text)"])
            case .closed(let reason):
                await upstreamClosed(connection, reason: reason)
            }
        }
    }

    private func upstreamClosed(_ connection: any UpstreamConnection, reason: String) async {
        guard upstream === connection else { return }
        upstream = nil
        catalog = nil
        if lastStart.duration(to: .now) > .seconds(60) { restarts = 1 }
        for (id, entry) in pending {
            // In the log before the agent hears of the failure. The quota is kept: the call may have run.
            if let ticket = entry.ticket { await gate.complete(ticket, outcome: .transportError(reason)) }
            if let waiter = entry.internalWaiter {
                waiter.resume(returning: nil)
            } else {
                entry.sink?.answer(JSONRPCWriter.error(id: id, code: -32603, message: "The upstream server stopped: \(reason)"))
            }
            finish(entry, id: id)
        }
        pending.removeAll()
        progressRoutes.removeAll()
    }

    private func fromUpstream(_ message: JSONRPCMessage) async {
        switch message.kind {
        case .response, .error:
            guard let id = message.id, let entry = pending.removeValue(forKey: id) else {
                logger.debug("a response for no request in flight; dropped", metadata: ["id": "\(message.id?.description ?? "null")"])
                return
            }
            if let waiter = entry.internalWaiter {
                waiter.resume(returning: message)
                return
            }
            var bytes = message.bytes
            if entry.isToolList, let list = ToolListResponse(message) {
                var known = entry.firstPage ? [:] : (catalog ?? [:])
                for tool in list.tools { known[tool.name] = tool }
                catalog = known
                let gate = gate
                let server = identity.server
                bytes = list.bytes { gate.isHidden(tool: $0, server: server) }
            }
            finish(entry, id: id, closing: false)
            Self.answer(bytes, response: message, sink: entry.sink, ticket: entry.ticket, gate: gate)
        case .notification:
            if message.method == "notifications/progress", let token = message.paramsID("progressToken"),
                let requestID = progressRoutes[token], let sink = pending[requestID]?.sink
            {
                sink.send(message.bytes)
                return
            }
            if message.method == "notifications/tools/list_changed" { catalog = nil }
            deliverToAgent(message.bytes)
        case .request:
            deliverToAgent(message.bytes)
        }
    }

    private func deliverToAgent(_ bytes: [UInt8]) {
        if let listener {
            if case .terminated = listener.yield(bytes) { self.listener = nil } else { return }
        }
        if let sink = pending.values.first(where: { $0.sink != nil && $0.streams })?.sink {
            sink.send(bytes)
            return
        }
        if backlog.count >= options.backlogLimit { backlog.removeFirst() }
        backlog.append(bytes)
    }

    /// The answer to `server/discover` (protocol 2026-07-28): at once, an error, so 2.x clients fall back to the
    /// `initialize` handshake without waiting out their 10 s discovery timeout. The gateway relays handshake sessions.
    public static func discoverRefusal(id: JSONRPCID?) -> [UInt8] {
        JSONRPCWriter.error(
            id: id, code: -32601,
            message: "Method not found: server/discover. This gateway relays MCP sessions: send initialize (protocol 2025-11-25 or earlier).")
    }

    private static let initializedNotification = try! JSONRPCMessage(parsing: JSONRPCWriter.notification(method: "notifications/initialized"))

    /// Sends a request's answer to the agent and closes its stream. For a forwarded `tools/call`, the outcome is recorded
    /// beside the relay, not in its way (the next message from the upstream need not wait for a commit); a call the
    /// upstream refused without running it (``ToolCallOutcome/releasesReservations``) gives its quota back before the
    /// agent hears of the refusal, so a retry finds it.
    static func answer(
        _ bytes: [UInt8], response message: JSONRPCMessage, sink: ReplySink?, ticket: ToolCallTicket?,
        gate: any ToolCallGate
    ) {
        guard let ticket else {
            sink?.answer(bytes)
            return
        }
        let outcome = outcome(of: message)
        if outcome.releasesReservations {
            Task {
                await gate.complete(ticket, outcome: outcome)
                sink?.answer(bytes)
            }
        } else {
            sink?.answer(bytes)
            Task { await gate.complete(ticket, outcome: outcome) }
        }
    }

    static func outcome(of message: JSONRPCMessage) -> ToolCallOutcome {
        if message.kind == .error { return .rpcError(code: message.errorCode ?? -32603) }
        if let result = message.resultRange, let flag = try? JSONScanner(message.bytes).member("isError", of: result),
            String(decoding: message.bytes[flag], as: UTF8.self) == "true"
        {
            return .toolError
        }
        return .success
    }

    private func finish(_ entry: Pending, id: JSONRPCID, closing: Bool = true) {
        if closing { entry.sink?.finish() }
        if let token = entry.progressToken, progressRoutes[token] == id { progressRoutes.removeValue(forKey: token) }
    }

    /// The deadline of a request sent now (`options.requestTimeout`, or `limit`), with the timer set to wake for it.
    private func deadline(_ limit: Duration? = nil) -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + (limit ?? options.requestTimeout)
        timer.arm(at: deadline) { [weak self] in await self?.sweepExpired() }
        return deadline
    }

    /// Answers every request whose deadline has passed, then sets the timer for the next deadline.
    private func sweepExpired() async {
        timer.fired()
        let now = ContinuousClock.now
        for (id, entry) in pending where entry.deadline <= now { await timedOut(id) }
        if let next = pending.values.lazy.map(\.deadline).min() {
            timer.arm(at: next) { [weak self] in await self?.sweepExpired() }
        }
    }

    private func timedOut(_ id: JSONRPCID) async {
        guard let entry = pending.removeValue(forKey: id) else { return }
        let seconds = options.requestTimeout.components.seconds
        // The outcome is in the log before the agent hears of it, as for every other way a call ends.
        if let ticket = entry.ticket { await gate.complete(ticket, outcome: .timedOut) }
        if let waiter = entry.internalWaiter {
            waiter.resume(returning: nil)
        } else {
            entry.sink?.answer(
                JSONRPCWriter.error(id: id, code: -32001, message: "Request timed out: the upstream server did not answer within \(seconds) s"))
        }
        finish(entry, id: id)
        await upstream?.sendCancellation(of: id, reason: "timed out in the gateway")
    }

    // MARK: - The gateway's own requests

    /// The upstream's tool list, for deciding a call: the one the session knows, or one read now (calls that come
    /// meanwhile wait for the same reading). Never skipped: a call without it is refused.
    private func currentCatalog() async -> ToolCatalog {
        if let catalog { return .listed(catalog) }
        if let catalogLoad { return await catalogLoad.value }
        let load = Task { await self.loadCatalog() }
        catalogLoad = load
        let result = await load.value
        catalogLoad = nil
        return result
    }

    /// Asks the upstream for its whole tool list (every page), for deciding calls of a client that never listed them
    /// (or that listed them before a `tools/list_changed`), within ``ToolCatalog/loadLimit`` per page.
    private func loadCatalog() async -> ToolCatalog {
        let upstream: any UpstreamConnection
        do {
            upstream = try await liveUpstream()
        } catch {
            return .unavailable("the server is unavailable: \(error.description)")
        }
        var tools: [String: ToolDescriptor] = [:]
        var cursor: String?
        for _ in 0..<ToolCatalog.maxPages {
            let params = cursor.map { #"{"cursor":\#(JSONRPCWriter.string($0))}"# }
            let limit = min(options.requestTimeout, ToolCatalog.loadLimit)
            let reply = await internalRequest(method: "tools/list", params: params, on: upstream, limit: limit)
            let list: ToolListResponse
            switch ToolCatalog.page(reply, limit: limit) {
            case .success(let page): list = page
            case .failure(let why): return .unavailable(why.description)
            }
            for tool in list.tools { tools[tool.name] = tool }
            guard let next = list.nextCursor else {
                catalog = tools
                return .listed(tools)
            }
            cursor = next
        }
        return .unavailable("the list has more than \(ToolCatalog.maxPages) pages")
    }

    /// Logs a request that reads data (`resources/read`, `prompts/get`): who read what (the logger carries who).
    static func logRead(_ message: JSONRPCMessage, method: String, logger: Logger) {
        let target = message.paramsString("uri") ?? message.paramsString("name") ?? ""
        logger.info("read through the gateway", metadata: ["method": "\(method)", "target": "\(Self.quoted(target))"])
    }

    /// `text` as a JSON string of at most 200 characters, for a log line that an agent's bytes cannot break.
    static func quoted(_ text: String) -> String {
        JSONRPCWriter.string(text.shortened(to: 200))
    }

    private func internalRequest(
        method: String, params: String?, on connection: any UpstreamConnection, limit: Duration? = nil
    ) async -> JSONRPCMessage? {
        internalCounter += 1
        let id = JSONRPCID(string: "tollgate-\(internalCounter)-\(UUID().uuidString.prefix(8))")
        guard let message = try? JSONRPCMessage(parsing: JSONRPCWriter.request(id: id, method: method, params: params)) else { return nil }
        return await withCheckedContinuation { (waiter: CheckedContinuation<JSONRPCMessage?, Never>) in
            pending[id] = Pending(
                method: method, sink: nil, internalWaiter: waiter, progressToken: nil, ticket: nil, deadline: deadline(limit),
                isToolList: false, firstPage: false)
            Task {
                do {
                    try await connection.send(message)
                } catch {
                    self.internalSendFailed(id)
                }
            }
        }
    }

    private func internalSendFailed(_ id: JSONRPCID) {
        guard let entry = pending.removeValue(forKey: id) else { return }
        entry.internalWaiter?.resume(returning: nil)
    }
}
