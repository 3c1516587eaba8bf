import AsyncHTTPClient
import Foundation
import Instrumentation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Where and how to reach a remote MCP server.
public struct HTTPEndpoint: Sendable, Equatable {
    public enum Transport: String, Sendable {
        /// Streamable HTTP (2025-03-26 and later): POST each message, responses as JSON or an SSE stream.
        case streamableHTTP = "streamable-http"
        /// The legacy HTTP+SSE transport (2024-11-05): a GET event stream names the URL to POST messages to.
        case sse
    }

    public var url: String
    public var transport: Transport
    /// Sent with every request (credentials for the upstream, from the configuration).
    public var headers: [(name: String, value: String)]

    public init(url: String, transport: Transport, headers: [(name: String, value: String)] = []) {
        self.url = url
        self.transport = transport
        self.headers = headers
    }

    public static func == (lhs: HTTPEndpoint, rhs: HTTPEndpoint) -> Bool {
        lhs.url == rhs.url && lhs.transport == rhs.transport && lhs.headers.elementsEqual(rhs.headers) { $0 == $1 }
    }
}

/// The HTTP clients that upstream connections share: the lean one for POSTs to plain `http://` URLs (each tool call
/// is one), AsyncHTTPClient for `https`, the long-lived GET event streams and session deletes.
public struct UpstreamHTTPClients: Sendable {
    public let general: HTTPClient
    public let plain: PlainHTTPClient

    /// Clients set up for upstreams: no redirects, bounded connect time, answers up to `maxMessageBytes`.
    public init(maxMessageBytes: Int = 16 << 20, maxConnectionsPerTarget: Int = 64) {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10))
        configuration.decompression = .disabled
        // AsyncHTTPClient keeps 8 connections per host by default and queues the rest: agents' concurrent calls to one
        // upstream would wait in that queue behind each other's answers.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        general = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        plain = PlainHTTPClient(maxBodyBytes: maxMessageBytes, maxConnectionsPerTarget: maxConnectionsPerTarget)
    }

    /// Closes every connection of both clients.
    public func shutdown() async {
        await plain.shutdown()
        try? await general.shutdown()
    }
}

/// A remote MCP server reached over Streamable HTTP or legacy HTTP+SSE, streaming: POSTs to a plain `http://` URL
/// through ``PlainHTTPClient``, everything else through AsyncHTTPClient.
///
/// Streamable HTTP: every message is a POST; a request's answer comes back as a JSON body or an SSE stream read as
/// it arrives (so progress notifications pass through while the call runs); the session id from the `initialize`
/// response and the negotiated protocol version go on every later request; a GET stream carries the server's own
/// messages when the server offers one; `close()` deletes the session. Legacy SSE: a GET stream is opened first,
/// its `endpoint` event names where to POST, and every answer arrives on that stream.
///
/// Redirects are not followed: an upstream's location is configuration, not something a response may change.
public final class HTTPUpstreamConnection: UpstreamConnection, Sendable {
    public let events: AsyncStream<UpstreamEvent>
    private let continuation: AsyncStream<UpstreamEvent>.Continuation
    /// What the event streams have read ahead of the relay, bounded: past it, they stop reading.
    private let pending = PendingEvents()
    private let endpoint: HTTPEndpoint
    private let http: UpstreamHTTPClients
    /// The endpoint's URL parsed for the lean client; nil when it is not a plain `http://` URL.
    private let endpointTarget: PlainHTTPClient.Target?
    private let logger: Logger
    private let maxMessageBytes: Int
    private let state = Mutex(State())

    private struct State {
        var sessionID: String?
        var protocolVersion: String?
        var initializeID: JSONRPCID?
        var postURL: String?
        var tasks: [Int: Task<Void, Never>] = [:]
        /// The task reading each request's own event stream, by the request's id.
        var streams: [JSONRPCID: Int] = [:]
        var nextTaskKey = 0
        /// Tracked tasks that ended before they were registered.
        var finishedEarly: Set<Int> = []
        var closed = false
        var listening = false
    }

    private init(endpoint: HTTPEndpoint, http: UpstreamHTTPClients, maxMessageBytes: Int, logger: Logger) {
        (events, continuation) = AsyncStream.makeStream(of: UpstreamEvent.self, bufferingPolicy: .unbounded)
        self.endpoint = endpoint
        self.http = http
        endpointTarget = PlainHTTPClient.Target(url: endpoint.url)
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
    }

    /// Connects: for Streamable HTTP nothing happens until the first message; for legacy SSE the event stream is
    /// opened and its `endpoint` event awaited.
    public static func connect(
        _ endpoint: HTTPEndpoint, http: UpstreamHTTPClients, maxMessageBytes: Int = 16 << 20, logger: Logger
    ) async throws(UpstreamError) -> HTTPUpstreamConnection {
        let upstream = HTTPUpstreamConnection(endpoint: endpoint, http: http, maxMessageBytes: maxMessageBytes, logger: logger)
        if endpoint.transport == .sse { try await upstream.openLegacyStream() }
        return upstream
    }

    public func send(_ message: JSONRPCMessage) async throws(UpstreamError) {
        let (closed, postURL) = state.withLock { state in
            if message.method == "initialize" { state.initializeID = message.id }
            return (state.closed, state.postURL)
        }
        guard !closed else { throw .notSent("the connection to \(endpoint.url) is closed") }
        let routing = state.withLock { $0.sessionID == nil } ? Self.statelessHeaders(of: message) : []
        // A cancellation goes before the calls waiting for a connection: behind them it would come too late.
        let answer = try await post(
            message.bytes, to: endpoint.transport == .sse ? (postURL ?? endpoint.url) : endpoint.url, routing: routing,
            urgent: message.method == "notifications/cancelled")
        if message.method == "initialize", let session = answer.headers.first(name: "Mcp-Session-Id") {
            state.withLock { $0.sessionID = session }
        }
        switch (answer.status, answer.body) {
        case (202, _):
            if message.kind == .notification, message.method == "notifications/initialized", endpoint.transport == .streamableHTTP {
                startListening()
            }
            return
        // An event stream (a success of that type, `PlainHTTPClient.isEventStream`), read as it arrives.
        // What comes on a request's event stream belongs to that request.
        case (_, .generalStream(let body)): track(request: message.id) { [self] in await self.readEventStream(body, related: message.id) }
        case (_, .plainStream(let body)): track(request: message.id) { [self] in await self.readEventStream(body, related: message.id) }
        case (200..<300, .complete(let body)):
            if !body.isEmpty { await deliver(body) }
        case (404, _) where state.withLock({ $0.sessionID != nil }):
            // The upstream forgot the session (it restarted): the relay starts a new one.
            finishStream(reason: "the upstream server \(endpoint.url) ended the session (HTTP 404)")
            throw UpstreamError("the upstream server ended the session")
        case (_, .complete(let body)):
            if let reply = try? JSONRPCMessage(parsing: body), reply.kind == .error, reply.id != nil, reply.id == message.id {
                await emit(.message(reply))
                return
            }
            let text = String(decoding: body.prefix(200), as: UTF8.self)
            throw UpstreamError("the upstream server answered HTTP \(answer.status)\(text.isEmpty ? "" : ": \(text)")")
        }
    }

    /// An answer to a POST, from either client.
    private struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: AnswerBody
    }

    private enum AnswerBody: Sendable {
        /// Any answer but an event stream, read whole.
        case complete([UInt8])
        case generalStream(HTTPClientResponse.Body)
        case plainStream(PlainHTTPClient.EventStreamBody)
    }

    /// POSTs one message: plain `http://` URLs through the lean client, anything else through AsyncHTTPClient.
    private func post(
        _ bytes: [UInt8], to url: String, routing: [(name: String, value: String)] = [], urgent: Bool = false
    ) async throws(UpstreamError) -> Answer {
        var headers = requestHeaders(
            setting: [(name: "Content-Type", value: "application/json"), (name: "Accept", value: "application/json, text/event-stream")] + routing)
        // The trace of a call the gateway forwards (its upstream call's span, RelayShell): `traceparent` (and
        // `tracestate`), so the upstream's own spans join the agent's trace. Nothing without tracing or a span.
        if CallTracing.isOn, let context = ServiceContext.current {
            var trace: [(name: String, value: String)] = []
            InstrumentationSystem.instrument.inject(context, into: &trace, using: TraceHeaders())
            if !trace.isEmpty {
                headers.removeAll { $0.name.lowercased() == "traceparent" || $0.name.lowercased() == "tracestate" }
                headers += trace
            }
        }
        let body = ByteBuffer(bytes: bytes)
        if let target = url == endpoint.url ? endpointTarget : PlainHTTPClient.Target(url: url) {
            let response: PlainHTTPClient.Response
            do {
                response = try await http.plain.execute(.POST, target, headers: headers, body: body, urgent: urgent)
            } catch {
                throw UpstreamError("cannot reach \(endpoint.url): \(error)", notSent: error is PlainHTTPClient.NotSent)
            }
            switch response.body {
            case .complete(let whole):
                return Answer(status: response.status, headers: response.headers, body: .complete(Array(whole.readableBytesView)))
            case .stream(let stream): return Answer(status: response.status, headers: response.headers, body: .plainStream(stream))
            }
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for header in headers { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(body)
        let response: HTTPClientResponse
        do {
            response = try await http.general.execute(request, timeout: .hours(24), logger: logger)
        } catch {
            throw UpstreamError("cannot reach \(endpoint.url): \(error)", notSent: Self.failedBeforeSending(error))
        }
        let status = Int(response.status.code)
        if PlainHTTPClient.isEventStream(status: status, headers: response.headers) {
            return Answer(status: status, headers: response.headers, body: .generalStream(response.body))
        }
        // A failure's body only explains it: one that cannot be read leaves the status to speak.
        let whole = (200..<300).contains(status) ? try await collect(response.body) : (try? await collect(response.body)) ?? []
        return Answer(status: status, headers: response.headers, body: .complete(whole))
    }

    /// The headers protocol 2026-07-28 requires on a stateless request, taken from the very message that is sent:
    /// `MCP-Protocol-Version` (the version in its `params._meta`), `Mcp-Method`, and for `tools/call`, `prompts/get`
    /// and `resources/read` `Mcp-Name` (the tool or prompt name, or the resource URI). A message without that
    /// version in its `_meta` is not a stateless request and gets none.
    static func statelessHeaders(of message: JSONRPCMessage) -> [(name: String, value: String)] {
        guard message.kind == .request, let method = message.method,
            let version = message.metaString("io.modelcontextprotocol/protocolVersion")
        else { return [] }
        var headers = [(name: "MCP-Protocol-Version", value: version), (name: "Mcp-Method", value: method)]
        let nameKey = ["tools/call": "name", "prompts/get": "name", "resources/read": "uri"][method]
        if let nameKey, let name = message.paramsString(nameKey) { headers.append((name: "Mcp-Name", value: headerValue(name))) }
        return headers
    }

    /// `value` as an HTTP header value the way MCP carries names: as it is when it is printable ASCII without
    /// whitespace at either end, else as `=?base64?...?=` of its UTF-8.
    static func headerValue(_ value: String) -> String {
        let printable = value.utf8.allSatisfy { (0x20...0x7E).contains($0) }
        let trimmed = value.first != " " && value.last != " "
        let lookalike = value.hasPrefix("=?base64?") && value.hasSuffix("?=")
        if printable, trimmed, !lookalike { return value }
        return "=?base64?" + Data(value.utf8).base64EncodedString() + "?="
    }

    /// Whether an error of AsyncHTTPClient's came before the request could be written: no connection was ever had
    /// (none could be opened, or its TLS handshake did not finish). Any other error may have come after the request
    /// left, so it is not counted as unsent.
    static func failedBeforeSending(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return [.connectTimeout, .getConnectionFromPoolTimeout, .tlsHandshakeTimeout, .alreadyShutdown].contains(error)
        }
        return error is NIOConnectionError
    }

    public func close() async {
        let (tasks, session, wasClosed) = state.withLock { state in
            defer {
                state.closed = true
                state.tasks.removeAll()
            }
            return (Array(state.tasks.values), state.sessionID, state.closed)
        }
        guard !wasClosed else { return }
        pending.close()
        tasks.forEach { $0.cancel() }
        if let session, endpoint.transport == .streamableHTTP {
            var request = HTTPClientRequest(url: endpoint.url)
            request.method = .DELETE
            addHeaders(to: &request)
            request.headers.replaceOrAdd(name: "Mcp-Session-Id", value: session)
            _ = try? await http.general.execute(request, timeout: .seconds(5), logger: logger)
        }
        continuation.yield(.closed(reason: "closed by the gateway"))
        continuation.finish()
    }

    // MARK: - Helpers

    private func addHeaders(to request: inout HTTPClientRequest) {
        for header in requestHeaders() { request.headers.add(name: header.name, value: header.value) }
    }

    /// The configured headers, then the session's (its id and the negotiated protocol version), then `extra`: each
    /// of the later ones replaces a configured header of its name.
    private func requestHeaders(setting extra: [(name: String, value: String)] = []) -> [(name: String, value: String)] {
        let (session, version) = state.withLock { ($0.sessionID, $0.protocolVersion) }
        var set = extra
        if let session { set.append((name: "Mcp-Session-Id", value: session)) }
        if let version { set.append((name: "MCP-Protocol-Version", value: version)) }
        var headers = endpoint.headers
        if !headers.isEmpty {
            let names = Set(set.map { $0.name.lowercased() })
            headers.removeAll { names.contains($0.name.lowercased()) }
        }
        return headers + set
    }

    private func collect(_ body: HTTPClientResponse.Body) async throws(UpstreamError) -> [UInt8] {
        do {
            var buffer = try await body.collect(upTo: maxMessageBytes)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch {
            throw UpstreamError("cannot read the answer of \(endpoint.url): \(error)")
        }
    }

    /// Reports one message; a notification on the event stream of request `related` as ``UpstreamEvent/related(_:to:)``.
    private func deliver(_ bytes: [UInt8], related: JSONRPCID? = nil) async {
        do {
            let message = try JSONRPCMessage(parsing: bytes)
            if let related, message.kind == .notification {
                await emit(.related(message, to: related))
                return
            }
            if message.kind == .response, let id = message.id {
                state.withLock { state in
                    if state.initializeID == id {
                        state.protocolVersion = message.resultString("protocolVersion")
                        state.initializeID = nil
                    }
                }
            }
            await emit(.message(message))
        } catch {
            await emit(.garbage(String(decoding: bytes.prefix(200), as: UTF8.self)))
        }
    }

    /// Reports one event once the relay is not too far behind (``PendingEvents``).
    private func emit(_ event: UpstreamEvent) async {
        await pending.enter(event.cost)
        continuation.yield(event)
    }

    public func taken(_ event: UpstreamEvent) { pending.leave(event.cost) }

    /// The relay gave request `id` up: the event stream of its answer, if one is being read, is closed (so it holds
    /// no connection until the upstream ends it).
    public func abandon(_ id: JSONRPCID) {
        let task = state.withLock { state in state.streams.removeValue(forKey: id).flatMap { state.tasks[$0] } }
        task?.cancel()
    }

    /// Runs `body` as a task that `close()` cancels (and `abandon(request)`, for a request's own event stream).
    private func track(request: JSONRPCID? = nil, _ body: @escaping @Sendable () async -> Void) {
        let key = state.withLock { state in
            state.nextTaskKey += 1
            if let request { state.streams[request] = state.nextTaskKey }
            return state.nextTaskKey
        }
        let task = Task {
            await body()
            // A short body may end before it is registered below: then it leaves a note instead of an entry behind.
            self.state.withLock { state in
                if state.tasks.removeValue(forKey: key) == nil { state.finishedEarly.insert(key) }
                if let request, state.streams[request] == key { state.streams[request] = nil }
            }
        }
        state.withLock { state in
            if state.finishedEarly.remove(key) != nil { return }
            if state.closed { task.cancel() } else { state.tasks[key] = task }
        }
    }

    private func readEventStream<Body: AsyncSequence>(
        _ body: Body, related: JSONRPCID? = nil, onEvent: ((SSEParser.Event) -> Bool)? = nil
    ) async
    where Body.Element == ByteBuffer {
        var parser = SSEParser(maxEventBytes: maxMessageBytes)
        do {
            for try await chunk in body {
                for event in parser.feed(chunk.readableBytesView) {
                    if let onEvent, onEvent(event) { continue }
                    if event.name == "message", !event.data.isEmpty { await deliver(event.data, related: related) }
                }
            }
        } catch {
            logger.debug("upstream event stream ended", metadata: ["error": "\(error)"])
        }
        if parser.droppedOversized > 0 {
            await emit(.garbage("\(parser.droppedOversized) event(s) larger than \(maxMessageBytes) bytes"))
        }
    }

    private func finishStream(reason: String) {
        let wasClosed = state.withLock { state in
            defer { state.closed = true }
            return state.closed
        }
        guard !wasClosed else { return }
        continuation.yield(.closed(reason: reason))
        continuation.finish()
    }

    /// The Streamable HTTP GET stream, opened once the session is initialized; a server without one answers 405.
    private func startListening() {
        let start = state.withLock { state -> Bool in
            defer { state.listening = true }
            return !state.listening
        }
        guard start else { return }
        track { [self] in
            var request = HTTPClientRequest(url: endpoint.url)
            request.method = .GET
            addHeaders(to: &request)
            request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
            guard let response = try? await http.general.execute(request, timeout: .hours(24), logger: logger) else { return }
            guard response.status == .ok, response.headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/event-stream") == true else {
                return
            }
            await readEventStream(response.body)
        }
    }

    /// Legacy SSE: opens the event stream and waits (up to 10 s) for its `endpoint` event.
    private func openLegacyStream() async throws(UpstreamError) {
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .GET
        addHeaders(to: &request)
        request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
        let response: HTTPClientResponse
        // The head, like the `endpoint` event after it, within 10 s: a server that accepts the connection and never
        // answers must not hold the requests waiting for the upstream's start for ever.
        let (http, logger) = (http, logger)
        let opening = Task { try await http.general.execute(request, timeout: .hours(24), logger: logger) }
        let headLimit = Task {
            try? await Task.sleep(for: .seconds(10))
            opening.cancel()
        }
        defer { headLimit.cancel() }
        do {
            response = try await opening.value
        } catch {
            throw UpstreamError("cannot reach \(endpoint.url): \(error)")
        }
        guard response.status == .ok else { throw UpstreamError("the SSE endpoint \(endpoint.url) answered HTTP \(response.status.code)") }
        let (found, signal) = AsyncStream.makeStream(of: String.self)
        let base = endpoint.url
        track { [self] in
            await readEventStream(response.body) { event in
                guard event.name == "endpoint" else { return false }
                signal.yield(String(decoding: event.data, as: UTF8.self))
                return true
            }
            signal.finish()
            finishStream(reason: "the upstream event stream \(base) ended")
        }
        let timeout = Task {
            try? await Task.sleep(for: .seconds(10))
            signal.finish()
        }
        defer { timeout.cancel() }
        var iterator = found.makeAsyncIterator()
        guard let path = await iterator.next() else {
            throw UpstreamError("the SSE endpoint \(endpoint.url) sent no `endpoint` event within 10 s")
        }
        guard let resolved = URL(string: path, relativeTo: URL(string: base))?.absoluteURL,
            let baseURL = URL(string: base), resolved.scheme == baseURL.scheme, resolved.host == baseURL.host, resolved.port == baseURL.port
        else {
            throw UpstreamError("the SSE endpoint \(endpoint.url) named a message URL on another origin: \(path)")
        }
        state.withLock { $0.postURL = resolved.absoluteString }
    }
}

extension JSONRPCMessage {
    /// The string member `key` of `result`.
    func resultString(_ key: String) -> String? {
        guard let resultRange else { return nil }
        let scanner = JSONScanner(bytes)
        guard let range = try? scanner.member(key, of: resultRange) else { return nil }
        return scanner.string(at: range)
    }
}

/// Writes trace context (`traceparent`, `tracestate`) into an upstream request's header list.
struct TraceHeaders: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout [(name: String, value: String)]) {
        headers.append((name: key, value: value))
    }
}
