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
/// - routes what the upstream sends (``RelayRequests``): a response to the stream of its request, progress to the
///   stream of the request that asked for it, a `subscriptions/listen` stream's messages to that stream, everything else
///   to the agent's listening stream (or, while none is open, to an open request stream, or a small backlog);
/// - restarts a dead upstream on the next request, with backoff, replaying the agent's `initialize`
///   (``UpstreamLifecycle``).
///
/// A thin shell (``RelayShell``) over a pure ``RelayStateMachine``, as ``StatelessRelay`` is.
///
/// ```swift
/// let session = RelaySession(identity: identity, gate: gate, connect: { try StdioUpstreamConnection.start(command, logger: logger) }, logger: logger)
/// switch await session.receive(message) { case .stream(let replies): ...; case .immediate(let bytes): ...; case .accepted: ... }
/// ```
public actor RelaySession: RelayShell {
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
        /// Messages kept for the agent while no stream is open to carry them, and their bytes at most (the oldest go).
        public var backlogLimit = 256
        public var backlogBytes = 1 << 20
        /// What one request's stream, or the listening stream, holds unread before it drops what it may
        /// (``ReplyStream``).
        public var replyBufferBytes = ReplyStream.defaultBound
        /// The process's bound on unread bytes, shared by every relay.
        public var buffers = BufferBudget.process
        /// The agent's open `subscriptions/listen` streams, within their cap; nil: no cap.
        public var listenStreams: ListenStreamCap?
        public init() {}
    }

    public nonisolated let identity: SessionIdentity
    public nonisolated let id: String
    let gate: any ToolCallGate
    let connect: @Sendable () async throws -> any UpstreamConnection
    let options: Options
    let logger: Logger
    var serverName: String { identity.server }

    var machine: RelayStateMachine<ReplySink, any UpstreamConnection>
    var shell = RelayShellState()
    private var listener: ReplySink?
    private var listenerGeneration = 0
    public private(set) var lastActivity: ContinuousClock.Instant = .now

    public init(
        identity: SessionIdentity, gate: any ToolCallGate, options: Options = Options(),
        connect: @escaping @Sendable () async throws -> any UpstreamConnection, logger: Logger
    ) {
        self.identity = identity
        self.id = identity.session
        self.gate = gate
        self.options = options
        self.connect = connect
        self.machine = RelayStateMachine(mode: .session(backlogLimit: options.backlogLimit, backlogBytes: options.backlogBytes))
        var logger = logger
        logger[metadataKey: "session"] = "\(identity.session)"
        logger[metadataKey: "server"] = "\(identity.server)"
        logger[metadataKey: "agent"] = "\(identity.agent)"
        self.logger = logger
    }

    /// Whether any request is in flight or a listening stream is open (such a session is not idle).
    public var isBusy: Bool { !machine.requests.isEmpty || hasListener }

    // MARK: - From the agent

    /// Handles one message from the agent. `streaming`: the transport sends every message of a request's stream to the
    /// agent (an SSE response), not just the last (a JSON response); only such streams carry server messages.
    public func receive(_ message: JSONRPCMessage, streaming: Bool = true) async -> Reply {
        lastActivity = .now
        guard !shell.closed else {
            return message.kind == .request ? .immediate(Self.terminated(id: message.id)) : .accepted
        }
        if let refusal = AgentMethods.refusal(of: message) {
            logger.notice("a message no rule lets through was refused", metadata: ["method": "\(Self.quoted(message.method ?? ""))"])
            return .immediate(refusal)
        }
        switch message.kind {
        case .notification:
            if message.method == "notifications/cancelled", let target = message.paramsID("requestId") {
                // The agent's own notification goes upstream: the relay does not send another. A request still waiting
                // its turn to be written never is, and then there is nothing to cancel upstream.
                let sending = stopSending(target)
                machine.upstream.connection?.abandon(target)
                await perform(machine.requests.cancelled(target))
                if let sending, await sending.value?.notSent == true { return .accepted }
            }
            if let upstream = machine.upstream.connection { try? await upstream.send(message) }
            return .accepted
        case .response, .error:
            if let upstream = machine.upstream.connection { try? await upstream.send(message) }
            return .accepted
        case .request:
            return await request(message, streaming: streaming)
        }
    }

    /// Whether the agent's listening stream (HTTP GET) is open.
    public var hasListener: Bool { listener.map { !$0.isTerminated } ?? false }

    private func request(_ message: JSONRPCMessage, streaming: Bool) async -> Reply {
        guard let id = message.id, let method = message.method else { return .accepted }
        if method == "server/discover" { return .immediate(Self.discoverRefusal(id: id)) }
        var place: ListenStreamCap.Place?
        if method == "subscriptions/listen", let cap = options.listenStreams {
            place = cap.take(identity.agent)
            if place == nil { return .immediate(cap.refusal(id: id)) }
        }
        let (stream, sink) = ReplyStream.make(bound: options.replyBufferBytes, budget: options.buffers, holding: place)
        let request = RelayRequests<ReplySink>.Request(
            sink: sink, asker: .agent(streams: streaming), method: method, token: message.progressToken,
            firstPage: message.paramsString("cursor") == nil, limit: method == "subscriptions/listen" ? nil : options.requestTimeout)
        guard machine.requests.open(id, request) else {
            return .immediate(
                JSONRPCWriter.error(id: id, code: -32600, message: "Invalid Request: the id \(id) is already in use by a request in flight"))
        }
        if method == "initialize", let params = message.paramsBytes {
            machine.upstream.initializeParams = String(decoding: params, as: UTF8.self)
        }
        if AgentMethods.reads.contains(method) { Self.logRead(message, method: method, logger: logger) }
        if method == "tools/call" {
            // Decided beside the session (the decision may hold the call for a human's approval, with progress reports
            // when the agent asked for them and its stream carries them); other requests go on meanwhile.
            let progress = streaming ? message.progressToken.map { Self.progressReporter(token: $0, sink: sink) } : nil
            let identity = identity
            shell.deciding[id] = Task {
                await self.decideThenForward(
                    message, key: id, agentID: id, identity: identity, sink: sink, progress: progress, resultType: false, meta: nil,
                    answersWhenGivenUp: !streaming)
            }
            return .stream(stream)
        }
        if case .givenUp = await forward(message, key: id, ticket: nil) {
            await givenUp(ticket: nil, agentID: id, sink: sink, answer: streaming ? nil : Self.requestCancelled(id: id))
        }
        return .stream(stream)
    }

    /// The agent went away while `id` was in flight (its HTTP connection closed): the request is cancelled upstream,
    /// as if the agent had sent `notifications/cancelled`.
    public func abandon(_ id: JSONRPCID) async {
        await perform(machine.requests.cancelled(id, reason: "the client disconnected"))
    }

    /// Opens the agent's listening stream (HTTP GET): server-initiated messages go there. A second one replaces
    /// the first. Messages kept while none was open are sent first.
    /// What the agent has not read yet is bounded as a request's stream is (``ReplyStream``): past the bound, messages
    /// are dropped and counted.
    public func listen() -> ReplyStream { openListener().messages }

    /// `listen()`, with the listener's generation, for `closeListener`.
    public func openListener() -> (messages: ReplyStream, generation: Int) {
        listenerGeneration += 1
        listener?.finish()
        let generation = listenerGeneration
        let (stream, sink) = ReplyStream.make(bound: options.replyBufferBytes, budget: options.buffers)
        for message in machine.requests.listenerOpened() { sink.send(message) }
        listener = sink
        return (stream, generation)
    }

    /// The agent hung up its listening stream `generation`: it is ended, and messages for the agent are kept in the
    /// backlog for its next GET instead of being written to a connection that is gone. A newer stream is left alone.
    public func closeListener(_ generation: Int) {
        guard generation == listenerGeneration, let listener else { return }
        self.listener = nil
        machine.requests.listenerClosed()
        listener.finish()
    }

    func writeToListener(_ bytes: [UInt8]) -> Bool {
        guard let listener else { return false }
        if !listener.send(bytes), listener.isTerminated {
            self.listener = nil
            return false
        }
        return true
    }

    /// Sends a message of the gateway's own to the agent: `notifications/tools/list_changed` after a policy reload (to
    /// the agent as the upstream's would go, and to its `subscriptions/listen` streams that carry that notification).
    public func notifyAgent(_ message: [UInt8]) async {
        guard let method = (try? JSONRPCMessage(parsing: message))?.method else { return }
        await perform(machine.requests.gatewayNotification(method))
    }

    /// Ends the session: every open stream, and the upstream connection.
    public func close() async {
        guard !shell.closed else { return }
        shell.closed = true
        let (actions, connection) = machine.close { Self.terminated(id: $0) }
        stopAllSending()
        await perform(actions)
        shell.timer.cancel()
        listener?.finish()
        listener = nil
        await connection?.close()
    }

    // MARK: - Answers

    /// The answer to `server/discover` (protocol 2026-07-28): at once, an error, so 2.x clients fall back to the
    /// `initialize` handshake without waiting out their 10 s discovery timeout. The gateway relays handshake sessions.
    public static func discoverRefusal(id: JSONRPCID?) -> [UInt8] {
        JSONRPCWriter.error(
            id: id, code: -32601,
            message: "Method not found: server/discover. This gateway relays MCP sessions: send initialize (protocol 2025-11-25 or earlier).")
    }

    /// The answer to a request of a session that has ended.
    static func terminated(id: JSONRPCID?) -> [UInt8] {
        JSONRPCWriter.error(id: id, code: -32600, message: "Session terminated")
    }

    /// The answer to a request the agent cancelled before it was sent, when the transport must give one.
    static func requestCancelled(id: JSONRPCID) -> [UInt8] {
        JSONRPCWriter.error(id: id, code: -32800, message: "Request cancelled")
    }

    static let initializedNotification = try! JSONRPCMessage(parsing: JSONRPCWriter.notification(method: "notifications/initialized"))

    /// Sends a request's answer to the agent and closes its stream. For a forwarded `tools/call`, the outcome is recorded
    /// beside the relay, not in its way (the next message from the upstream need not wait for a commit); a call the
    /// upstream refused without running it (``ToolCallOutcome/releasesReservations``) gives its quota back before the
    /// agent hears of the refusal, so a retry finds it.
    static func answer(_ bytes: [UInt8], outcome: ToolCallOutcome, sink: ReplySink, ticket: ToolCallTicket?, gate: any ToolCallGate) {
        guard let ticket else {
            sink.answer(bytes)
            return
        }
        if outcome.releasesReservations {
            Task {
                await gate.complete(ticket, outcome: outcome)
                sink.answer(bytes)
            }
        } else {
            sink.answer(bytes)
            Task { await gate.complete(ticket, outcome: outcome) }
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

    /// Logs a request that reads data (`resources/read`, `prompts/get`): who read what (the logger carries who).
    static func logRead(_ message: JSONRPCMessage, method: String, logger: Logger) {
        let target = message.paramsString("uri") ?? message.paramsString("name") ?? ""
        logger.info("read through the gateway", metadata: ["method": "\(method)", "target": "\(Self.quoted(target))"])
    }

    /// `text` as a JSON string of at most 200 characters, for a log line that an agent's bytes cannot break.
    static func quoted(_ text: String) -> String {
        JSONRPCWriter.string(text.shortened(to: 200))
    }
}
