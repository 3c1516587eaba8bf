import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TollgateCore
import TollgateMCP

/// Streamable HTTP for agents at `/mcp/<server>`: POST a message (answered as JSON or as an SSE stream), GET the
/// server-to-client stream, DELETE the session.
///
/// Checks, in order, each answered with its own status and a JSON-RPC error body: the server exists (404), the
/// `Origin` is allowed (403), the bearer key names an agent (401 with `WWW-Authenticate`), the body is JSON (415)
/// and within the size limit (413), it is one valid JSON-RPC message (400), the session exists and belongs to this
/// agent and server (400 when missing, 404 when unknown).
struct MCPRoutes: Sendable {
    let servers: [String: ServerConfig]
    /// The agents in force (reloaded with the configuration file), read once per request.
    let live: LiveConfig
    let allowedOrigins: Set<String>
    let maxBodyBytes: Int
    let registry: SessionRegistry
    /// Per server, the relay of protocol 2026-07-28's stateless requests.
    let stateless: [String: StatelessRelay]
    let gate: any ToolCallGate
    let upstreams: UpstreamFactory
    let sessionOptions: RelaySession.Options
    let logger: Logger
    /// Agents that hang up while their call is under way (each connection's pipeline has a watcher).
    let hangUps = HangUps()
    /// Stateless requests under way, which a reload that removes their agent cancels.
    let statelessCalls = StatelessCalls()

    /// Protocol versions a handshake-era client may name in `MCP-Protocol-Version`.
    static let protocolVersions: Set<String> = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", statelessVersion]
    /// The protocol version of stateless requests (no session; version and client information on every request).
    static let statelessVersion = "2026-07-28"

    func register(on router: Router<GatewayRequestContext>) {
        router.post("mcp/:server") { request, context in try await post(request, context: context) }
        router.get("mcp/:server") { request, context in try await get(request, context: context) }
        router.delete("mcp/:server") { request, context in try await delete(request, context: context) }
        for method in [HTTPRequest.Method.put, .patch] {
            router.on("mcp/:server", method: method) { _, _ in
                Self.error(.methodNotAllowed, code: -32600, "Method not allowed: use POST, GET or DELETE", headers: [.allow: "GET, POST, DELETE"])
            }
        }
    }

    // MARK: - POST

    private func post(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let server: ServerConfig
        let agent: AgentConfig
        switch admit(request, context: context) {
        case .refused(let response): return response
        case .admitted(let s, let a):
            server = s
            agent = a
        }
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        guard contentType.hasPrefix("application/json") else {
            return Self.error(.unsupportedMediaType, code: -32700, "Unsupported Media Type: send the message as Content-Type: application/json")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            return Self.tooLarge(maxBodyBytes)
        }
        var body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return Self.tooLarge(maxBodyBytes)
        }
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        let message: JSONRPCMessage
        do {
            message = try JSONRPCMessage(parsing: bytes)
        } catch {
            return Self.error(.badRequest, id: error.id, code: error.code, error.message)
        }
        return try await RequestTracing.traced(message, request: request, server: server.name, agent: agent.id) {
            try await self.route(message, request: request, context: context, server: server, agent: agent)
        }
    }

    /// One parsed message of an admitted agent, routed: stateless, `initialize`, or within its session.
    private func route(
        _ message: JSONRPCMessage, request: Request, context: GatewayRequestContext, server: ServerConfig, agent: AgentConfig
    ) async throws -> Response {
        if let version = request.headers[.mcpProtocolVersion], !Self.protocolVersions.contains(version) {
            return Self.error(
                .badRequest, id: message.id, code: -32600,
                "Bad Request: unsupported MCP-Protocol-Version \(version); this gateway speaks \(Self.protocolVersions.sorted().joined(separator: ", "))"
            )
        }
        let acceptsStream = Self.accepts(request, "text/event-stream")
        let sessionID = request.headers[.mcpSessionID]

        switch message.method {
        case "server/discover" where sessionID == nil,
            _ where sessionID == nil && request.headers[.mcpProtocolVersion] == Self.statelessVersion:
            // 2026-07-28: discovery and stateless requests go to the server's shared upstream, which answers them if
            // it speaks that version (or refuses, and 2.x clients fall back to the initialize handshake).
            guard let relay = stateless[server.name] else { return Self.json(.ok, RelaySession.discoverRefusal(id: message.id)) }
            // Each agent's stateless requests count as one session of their own (`scope: session` limits, the log).
            let identity = SessionIdentity(agent: agent.id, grant: agent.grant, session: "stateless:\(agent.id)", server: server.name)
            // `receive` returns at once with the request's stream (a call is decided beside the relay, perhaps held for
            // approval); `answer` watches the connection from then on, and a hang-up before that is seen when it arms.
            let received = await relay.receive(message, identity: identity)
            switch received.reply {
            case .accepted: return Response(status: .accepted)
            case .immediate(let reply): return Self.json(message.kind == .request ? .ok : .badRequest, reply)
            case .stream(let replies):
                // A 2026-07-28 client cancels a request by closing its connection; a reload that removes its agent
                // cancels it too (answered `Request cancelled`): kept in `statelessCalls` until its answer ends.
                let abandon: @Sendable () async -> Void = { if let id = received.upstreamID { await relay.abandon(id) } }
                let calls = statelessCalls
                let token = calls.add(agent: agent.id, cancel: abandon)
                let finished: @Sendable () -> Void = { calls.remove(agent: agent.id, token: token) }
                // Admitted under a configuration a reload has replaced since: the reload may have looked before the add.
                if !live.admits(agent) { await calls.cancel(agents: [agent.id]) }
                return await answer(replies, streaming: acceptsStream, on: context.channel, finished: finished) {
                    finished()
                    await abandon()
                }
            }
        case "initialize" where message.kind == .request:
            guard sessionID == nil else {
                return Self.error(
                    .badRequest, id: message.id, code: -32600, "Bad Request: initialize starts a new session; send it without Mcp-Session-Id")
            }
            return await initialize(message, server: server, agent: agent, acceptsStream: acceptsStream)
        default:
            break
        }
        guard let sessionID else {
            return Self.error(
                .badRequest, id: message.id, code: -32600, "Bad Request: the Mcp-Session-Id header is required; start a session with initialize")
        }
        guard let session = await session(sessionID, server: server, agent: agent) else {
            return Self.error(
                .notFound, id: message.id, code: -32001, "Session not found: it ended or never existed; start a new one with initialize")
        }
        // An SSE answer when something may come before the response (progress was asked for, or server requests
        // have no GET stream to travel on); otherwise one JSON body, which costs less. Even then, see `answer`.
        let listening = await session.hasListener
        let streaming = acceptsStream && (message.progressToken != nil || !listening)
        // As above: the request's stream at once, its decision beside the session, the connection watched by `answer`.
        let received = await session.receive(message, streaming: streaming)
        switch received {
        case .accepted:
            return Response(status: .accepted)
        case .immediate(let reply):
            // A request's answer is a 200; anything else answered is a refused notification.
            return Self.json(message.kind == .request ? .ok : .badRequest, reply)
        case .stream(let replies):
            return await answer(replies, streaming: streaming, on: context.channel) {
                if let id = message.id { await session.abandon(id) }
            }
        }
    }

    private func initialize(_ message: JSONRPCMessage, server: ServerConfig, agent: AgentConfig, acceptsStream: Bool) async -> Response {
        let identity = SessionIdentity(agent: agent.id, grant: agent.grant, session: SessionRegistry.newSessionID(), server: server.name)
        let connect = upstreams.connector(for: server)
        let session = RelaySession(identity: identity, gate: gate, options: sessionOptions, connect: connect, logger: logger)
        let live = live
        switch await registry.add(session, admitted: { live.admits(agent) }) {
        case .success: break
        case .failure(.agentRevoked):
            return Self.error(
                .unauthorized, id: message.id, code: -32600, "Unauthorized: the key is not valid for any agent",
                headers: [.wwwAuthenticate: #"Bearer realm="tollgate", error="invalid_token""#])
        case .failure(.gatewayFull):
            return Self.error(.serviceUnavailable, id: message.id, code: -32603, "Too many sessions are open on this gateway; try again later")
        case .failure(.agentFull(let most)):
            return Self.error(
                .tooManyRequests, id: message.id, code: -32603,
                "Too many sessions: this agent has \(most) open, the most it may have (limits.max_sessions_per_agent); end one with DELETE or let one idle out"
            )
        }
        let reply: [UInt8]
        switch await session.receive(message) {
        case .accepted: reply = JSONRPCWriter.error(id: message.id, code: -32603, message: "Internal error: no answer to initialize")
        case .immediate(let bytes): reply = bytes
        case .stream(let replies):
            reply = await Self.last(of: replies) ?? JSONRPCWriter.error(id: message.id, code: -32603, message: "No answer to initialize")
        }
        let succeeded = (try? JSONRPCMessage(parsing: reply))?.kind == .response
        guard succeeded else {
            await registry.remove(identity.session)
            return Self.json(.ok, reply)
        }
        logger.info("session started", metadata: ["session": "\(identity.session)", "server": "\(server.name)", "agent": "\(agent.id)"])
        let headers: HTTPFields = [.mcpSessionID: identity.session]
        guard acceptsStream else { return Self.json(.ok, reply, headers: headers) }
        let (stream, sink) = AsyncStream.makeStream(of: [UInt8].self)
        sink.yield(reply)
        sink.finish()
        return Self.eventStream(stream, headers: headers) {}
    }

    // MARK: - GET and DELETE

    private func get(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let server: ServerConfig
        let agent: AgentConfig
        switch admit(request, context: context) {
        case .refused(let response): return response
        case .admitted(let s, let a): (server, agent) = (s, a)
        }
        guard Self.accepts(request, "text/event-stream") else {
            return Self.error(.notAcceptable, code: -32600, "Not Acceptable: the GET stream is text/event-stream; send Accept: text/event-stream")
        }
        guard let sessionID = request.headers[.mcpSessionID] else {
            return Self.error(.badRequest, code: -32600, "Bad Request: the Mcp-Session-Id header is required")
        }
        guard let session = await session(sessionID, server: server, agent: agent) else {
            return Self.error(.notFound, code: -32001, "Session not found: it ended or never existed; start a new one with initialize")
        }
        // An agent that hangs up its GET stream gets what came meanwhile on its next one, from the backlog.
        let (messages, generation) = await session.openListener()
        await registry.listening(sessionID, generation: generation)
        let watch = hangUps.arm(context.channel) { Task { await session.closeListener(generation) } }
        return Self.eventStream(ReplyReader(messages), first: nil, headers: [:], watch: watch) {}
    }

    private func delete(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let server: ServerConfig
        let agent: AgentConfig
        switch admit(request, context: context) {
        case .refused(let response): return response
        case .admitted(let s, let a): (server, agent) = (s, a)
        }
        guard let sessionID = request.headers[.mcpSessionID] else {
            return Self.error(.badRequest, code: -32600, "Bad Request: the Mcp-Session-Id header is required")
        }
        guard await session(sessionID, server: server, agent: agent) != nil else {
            return Self.error(.notFound, code: -32001, "Session not found: it ended or never existed")
        }
        await registry.remove(sessionID)
        logger.info("session ended by the client", metadata: ["session": "\(sessionID)"])
        return Response(status: .ok)
    }

    // MARK: - Checks

    private enum Admission {
        case admitted(ServerConfig, AgentConfig)
        case refused(Response)
    }

    private func admit(_ request: Request, context: GatewayRequestContext) -> Admission {
        guard let name = context.parameters.get("server"), let server = servers[name] else {
            return .refused(Self.error(.notFound, code: -32600, "Not Found: no MCP server of that name is configured on this gateway"))
        }
        if let origin = request.headers[.origin], !allowedOrigins.contains(origin) {
            logger.warning("request refused: origin not allowed", metadata: ["origin": "\(origin)"])
            return .refused(
                Self.error(.forbidden, code: -32600, "Forbidden: the Origin \(origin) is not allowed (allowed_origins in the configuration)"))
        }
        let authorization = request.headers[.authorization] ?? ""
        guard let key = Self.bearerKey(authorization), let agent = live.snapshot.agents.agent(forKey: key) else {
            let error = authorization.isEmpty ? "" : #", error="invalid_token""#
            return .refused(
                Self.error(
                    .unauthorized, code: -32600,
                    authorization.isEmpty
                        ? "Unauthorized: send the agent's key as Authorization: Bearer <key>" : "Unauthorized: the key is not valid for any agent",
                    headers: [.wwwAuthenticate: #"Bearer realm="tollgate""# + error]))
        }
        return .admitted(server, agent)
    }

    /// The key of an `Authorization` header `Bearer <key>`: the scheme in any case, spaces and tabs around the key left
    /// out; nil for another scheme or no key. Read as bytes: Foundation's trimming and `String`'s character counting
    /// were a fifth of the admission's cost, on every request.
    static func bearerKey(_ authorization: String) -> String? {
        let bytes = Array(authorization.utf8)
        let scheme = Array("bearer ".utf8)
        guard bytes.count > scheme.count else { return nil }
        for (byte, expected) in zip(bytes, scheme) {
            let lowered = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
            guard lowered == expected else { return nil }
        }
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = scheme.count
        var end = bytes.count
        while start < end, isBlank(bytes[start]) { start += 1 }
        while end > start, isBlank(bytes[end - 1]) { end -= 1 }
        guard start < end else { return nil }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// The session, if it exists and belongs to this agent and server (anything else looks like no session at all).
    private func session(_ id: String, server: ServerConfig, agent: AgentConfig) async -> RelaySession? {
        guard let session = await registry.session(id), session.identity.server == server.name, session.identity.agent == agent.id else {
            return nil
        }
        return session
    }

    static func accepts(_ request: Request, _ type: String) -> Bool {
        guard let accept = request.headers[.accept]?.lowercased() else { return false }
        return accept.contains(type) || accept.contains("*/*")
    }

    // MARK: - Responses

    static func json(_ status: HTTPResponse.Status, _ bytes: [UInt8], headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func error(_ status: HTTPResponse.Status, id: JSONRPCID? = nil, code: Int, _ message: String, headers: HTTPFields = [:]) -> Response {
        json(status, JSONRPCWriter.error(id: id, code: code, message: message), headers: headers)
    }

    static func tooLarge(_ limit: Int) -> Response {
        error(.contentTooLarge, code: -32600, "Content Too Large: a message may have at most \(limit) bytes (limits.max_body_bytes)")
    }

    /// The answer to a request whose messages (notifications and server requests, then its response) arrive on
    /// `replies`. Without `streaming`, the response alone, as JSON. With it (the agent takes SSE, and something may come
    /// before the response), the head waits for the first message: a response that comes first (nothing came before
    /// it, and nothing follows it) goes as one JSON body, which costs both sides less than an event stream (one write
    /// instead of three, no chunk and event framing); anything else opens the event stream with that message. The
    /// official clients set no read time-out, so a call that takes long (one held for approval) loses nothing by its
    /// head coming with its answer.
    ///
    /// An agent that hangs up (`channel`'s input ends) before the answer is written has given the call up:
    /// `onHangUp` runs (the relay cancels the call upstream), at once, not at the gateway's next write.
    /// `finished` runs once the answer is written, or its stream has ended.
    func answer(
        _ replies: ReplyStream, streaming: Bool, on channel: any Channel, finished: (@Sendable () -> Void)? = nil,
        onHangUp: @escaping @Sendable () async -> Void
    ) async -> Response {
        let watch = hangUps.arm(channel) { Task { await onHangUp() } }
        guard streaming else {
            defer {
                watch.disarm()
                finished?()
            }
            return Self.json(.ok, await Self.last(of: replies) ?? [])
        }
        let reader = ReplyReader(replies)
        let first = await reader.nextMessage()
        if let first, first.isAnswer {
            watch.disarm()
            finished?()
            return Self.json(.ok, first.bytes)
        }
        return Self.eventStream(reader, first: first?.bytes, headers: [:], watch: watch, finished: finished, onDisconnect: onHangUp)
    }

    static func last(of replies: ReplyStream) async -> [UInt8]? {
        var last: [UInt8]?
        for await reply in replies { last = reply }
        return last
    }

    /// An SSE response carrying `messages`; `onDisconnect` runs when the client goes away before the stream ends.
    static func eventStream(
        _ messages: AsyncStream<[UInt8]>, headers: HTTPFields, onDisconnect: @escaping @Sendable () async -> Void
    ) -> Response {
        eventStream(ReplyReader(messages), first: nil, headers: headers, watch: nil, onDisconnect: onDisconnect)
    }

    /// An SSE response carrying `first` (already read), then what `reader` reads; `watch` is disarmed and `finished` runs
    /// when it ends.
    private static func eventStream(
        _ reader: ReplyReader, first: [UInt8]?, headers: HTTPFields, watch: HangUps.Watch?, finished: (@Sendable () -> Void)? = nil,
        onDisconnect: @escaping @Sendable () async -> Void
    ) -> Response {
        var fields = headers
        fields[.contentType] = "text/event-stream"
        fields[.cacheControl] = "no-cache, no-transform"
        return Response(
            status: .ok, headers: fields,
            body: ResponseBody { writer in
                defer {
                    watch?.disarm()
                    finished?()
                }
                do {
                    var next = first
                    if next == nil { next = await reader.next() }
                    while let message = next {
                        var event = ByteBuffer(string: "event: message\ndata: ")
                        event.writeBytes(message.lazy.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 })
                        event.writeString("\n\n")
                        try await writer.write(event)
                        next = await reader.next()
                    }
                    try await writer.finish(nil)
                } catch {
                    await onDisconnect()
                    throw error
                }
            })
    }
}

/// Reads a request's reply stream (or a GET stream) in turns: the handler reads the first message, the response body
/// the rest. One iterator throughout, because dropping an `AsyncStream`'s iterator ends the stream; never read from two
/// tasks at once (the handler's read is over before the body's first).
private final class ReplyReader: @unchecked Sendable {
    private enum Source {
        case replies(ReplyStream.AsyncIterator)
        case listener(AsyncStream<[UInt8]>.AsyncIterator)
    }

    private var source: Source

    init(_ replies: ReplyStream) { source = .replies(replies.makeAsyncIterator()) }

    init(_ messages: AsyncStream<[UInt8]>) { source = .listener(messages.makeAsyncIterator()) }

    /// The next message, and whether it is a request's answer (a GET stream carries none).
    func nextMessage() async -> (bytes: [UInt8], isAnswer: Bool)? {
        switch source {
        case .replies(var iterator):
            let message = await iterator.nextMessage()
            source = .replies(iterator)
            return message
        case .listener(var iterator):
            let message = await iterator.next()
            source = .listener(iterator)
            return message.map { ($0, false) }
        }
    }

    func next() async -> [UInt8]? { await nextMessage()?.bytes }
}

extension HTTPField.Name {
    static let mcpSessionID = Self("Mcp-Session-Id")!
    static let mcpProtocolVersion = Self("MCP-Protocol-Version")!
}
