import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 client for the gateway's POSTs to `http://` upstreams, with a pool of kept-alive connections.
///
/// One tool call is one small POST, and AsyncHTTPClient's general machinery (redirects, TLS, proxies, its own
/// connection state machines and request bookkeeping) was a fifth of the gateway's CPU per call. This client does only
/// what the relay needs: it writes one request on an idle connection (or a new one) and answers with the status,
/// the headers and either the whole body (any answer but an event stream) or, for `text/event-stream`, a body read
/// as it arrives, one read at a time, so a slow reader holds the upstream back rather than filling memory.
///
/// Connections:
/// - A connection goes back to the pool when its answer has ended and neither side asked to close it. An idle
///   connection is kept at most `idleTimeout` (shorter than the usual server keep-alive of 5 s, so the server does
///   not close it as it is being reused) and a connection the server closes while idle leaves the pool at once.
/// - A request is never retried: a tool call may have effects, and a connection that fails mid-request may have
///   delivered it.
/// - Cancelling the waiting task, or dropping an event-stream body before its end, closes the connection.
///
/// TLS is not spoken here: `https` upstreams and the long-lived GET streams stay with AsyncHTTPClient.
public final class PlainHTTPClient: Sendable {
    /// Where a request goes: parsed once from a URL.
    public struct Target: Sendable, Hashable {
        public var host: String
        public var port: Int
        /// The path and query, percent-encoded, as sent in the request line.
        public var pathAndQuery: String
        /// The `Host` header's value.
        public var authority: String

        /// Parses an `http://` URL; nil for any other scheme, or a URL without a host.
        public init?(url: String) {
            guard let components = URLComponents(string: url), components.scheme?.lowercased() == "http",
                let host = components.host, !host.isEmpty, components.user == nil, components.password == nil
            else { return nil }
            let port = components.port ?? 80
            guard (1...65535).contains(port) else { return nil }
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            self.host = bare
            self.port = port
            let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
            pathAndQuery = components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
            let named = bare.contains(":") ? "[\(bare)]" : bare
            authority = components.port == nil ? named : "\(named):\(port)"
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: Body
    }

    public enum Body: Sendable {
        /// The whole body of an answer that is not an event stream.
        case complete(ByteBuffer)
        /// An event stream, read as it arrives.
        case stream(EventStreamBody)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    private let group: any EventLoopGroup
    private let maxBodyBytes: Int
    private let idleTimeout: Duration
    private let maxIdlePerTarget: Int
    private let pool = Mutex(Pool())

    private struct Pool {
        var idle: [Target: [Idle]] = [:]
        /// Every open connection, idle or busy, for `shutdown()`.
        var open: [ObjectIdentifier: Channel] = [:]
        var closed = false
    }

    private struct Idle {
        var connection: Connection
        var since: ContinuousClock.Instant
    }

    /// - Parameters:
    ///   - maxBodyBytes: the largest complete body accepted; a larger answer fails the request and closes its connection.
    ///   - idleTimeout: how long an idle connection is kept for reuse.
    public init(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, maxBodyBytes: Int = 16 << 20,
        idleTimeout: Duration = .seconds(3), maxIdlePerTarget: Int = 64
    ) {
        self.group = group
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
        self.maxIdlePerTarget = maxIdlePerTarget
    }

    /// Sends one request and waits for its answer's head (and, unless it is an event stream, its whole body).
    public func execute(
        _ method: HTTPMethod, _ target: Target, headers: [(name: String, value: String)], body: ByteBuffer?
    ) async throws -> Response {
        let connection = try await lease(target)
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target.pathAndQuery)
        head.headers.reserveCapacity(headers.count + 2)
        head.headers.add(name: "Host", value: target.authority)
        for header in headers { head.headers.add(name: header.name, value: header.value) }
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        let request = Request(head: head, body: body)
        do {
            return try await exchange(request, on: connection)
        } catch is NotSent {
            // The pooled connection closed before anything was written: the request can safely go on a new one.
            return try await exchange(request, on: try await connect(target))
        }
    }

    private func exchange(_ request: Request, on connection: Connection) async throws -> Response {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Response, any Error>) in
                connection.begin(request, continuation: continuation)
            }
        } onCancel: {
            connection.channel.close(promise: nil)
        }
    }

    /// Closes every connection; later requests fail.
    public func shutdown() async {
        let channels = pool.withLock { pool in
            pool.closed = true
            pool.idle.removeAll()
            return Array(pool.open.values)
        }
        for channel in channels { try? await channel.close() }
    }

    /// The number of open connections, idle or busy (for tests).
    public var openConnections: Int { pool.withLock { $0.open.count } }

    // MARK: - The pool

    private func lease(_ target: Target) async throws -> Connection {
        let now = ContinuousClock.now
        var stale: [Channel] = []
        let reused = try pool.withLock { pool throws(Failure) -> Connection? in
            guard !pool.closed else { throw Failure("the HTTP client is shut down") }
            while var list = pool.idle[target], let last = list.popLast() {
                pool.idle[target] = list.isEmpty ? nil : list
                if now - last.since < idleTimeout, last.connection.channel.isActive { return last.connection }
                stale.append(last.connection.channel)
            }
            return nil
        }
        for channel in stale { channel.close(promise: nil) }
        if let reused { return reused }
        return try await connect(target)
    }

    private func connect(_ target: Target) async throws -> Connection {
        let maxBodyBytes = maxBodyBytes
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler(maxBodyBytes: maxBodyBytes))
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            throw Failure("cannot connect to \(target.authority): \(error)")
        }
        let connection = try await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: ExchangeHandler.self)
            let connection = Connection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop), target: target)
            handler.onIdle = { [weak self] in self?.release(connection) }
            return connection
        }.get()
        let id = ObjectIdentifier(channel)
        let accepted = pool.withLock { pool in
            guard !pool.closed else { return false }
            pool.open[id] = channel
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            throw Failure("the HTTP client is shut down")
        }
        channel.closeFuture.whenComplete { [weak self] _ in self?.forget(connection) }
        return connection
    }

    private func release(_ connection: Connection) {
        let keep = pool.withLock { pool in
            guard !pool.closed, connection.channel.isActive else { return false }
            var list = pool.idle[connection.target, default: []]
            guard list.count < maxIdlePerTarget else { return false }
            list.append(Idle(connection: connection, since: .now))
            pool.idle[connection.target] = list
            return true
        }
        if !keep { connection.channel.close(promise: nil) }
    }

    private func forget(_ connection: Connection) {
        let id = ObjectIdentifier(connection.channel)
        pool.withLock { pool in
            pool.open[id] = nil
            if var list = pool.idle[connection.target] {
                list.removeAll { ObjectIdentifier($0.connection.channel) == id }
                pool.idle[connection.target] = list.isEmpty ? nil : list
            }
        }
    }
}

extension PlainHTTPClient {
    /// A request that was not written because its connection had closed.
    struct NotSent: Error {}

    struct Request: Sendable {
        var head: HTTPRequestHead
        var body: ByteBuffer?
    }

    final class Connection: Sendable {
        let channel: Channel
        let handler: NIOLoopBound<ExchangeHandler>
        let target: Target

        init(channel: Channel, handler: NIOLoopBound<ExchangeHandler>, target: Target) {
            self.channel = channel
            self.handler = handler
            self.target = target
        }

        func begin(_ request: Request, continuation: CheckedContinuation<Response, any Error>) {
            if channel.eventLoop.inEventLoop {
                handler.value.begin(request, continuation: continuation, channel: channel)
            } else {
                let handler = handler
                let channel = channel
                channel.eventLoop.execute { handler.value.begin(request, continuation: continuation, channel: channel) }
            }
        }
    }

    /// The event-stream body of an answer: each element is what one read brought.
    public struct EventStreamBody: AsyncSequence, Sendable {
        public typealias Element = ByteBuffer
        let reader: StreamReader

        public func makeAsyncIterator() -> Iterator { Iterator(reader: reader) }

        public struct Iterator: AsyncIteratorProtocol {
            let reader: StreamReader
            public mutating func next() async throws -> ByteBuffer? { try await reader.next() }
        }
    }

    /// Hands an event stream's chunks to its reader; closes the connection if the reader goes away before the end.
    final class StreamReader: Sendable {
        let channel: Channel
        let handler: NIOLoopBound<ExchangeHandler>
        private let finished = Atomic<Bool>(false)

        init(channel: Channel, handler: NIOLoopBound<ExchangeHandler>) {
            self.channel = channel
            self.handler = handler
        }

        func next() async throws -> ByteBuffer? {
            guard !finished.load(ordering: .relaxed) else { return nil }
            let handler = handler
            let chunk: ByteBuffer? = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
                    if channel.eventLoop.inEventLoop {
                        handler.value.demand(continuation)
                    } else {
                        channel.eventLoop.execute { handler.value.demand(continuation) }
                    }
                }
            } onCancel: { [channel] in
                channel.close(promise: nil)
            }
            if chunk == nil { finished.store(true, ordering: .relaxed) }
            return chunk
        }

        deinit {
            if !finished.load(ordering: .relaxed) { channel.close(promise: nil) }
        }
    }

    /// The connection's one exchange at a time, on its event loop. Reads are asked for only while something waits
    /// for bytes: an answer being collected, an event-stream reader, or an idle connection (to notice its close).
    final class ExchangeHandler: ChannelDuplexHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundIn = HTTPClientRequestPart
        typealias OutboundOut = HTTPClientRequestPart

        private enum State {
            case idle
            /// Written, waiting for the answer's head.
            case awaitingHead(CheckedContinuation<Response, any Error>)
            /// Collecting a complete body.
            case collecting(CheckedContinuation<Response, any Error>, HTTPResponseHead, ByteBuffer)
            /// Streaming an event stream to its reader.
            case streaming(buffered: ByteBuffer?, ended: Bool, waiting: CheckedContinuation<ByteBuffer?, any Error>?)
            case failed(any Error)
        }

        private let maxBodyBytes: Int
        private var state = State.idle
        private var context: ChannelHandlerContext?
        private var keepAlive = true
        var onIdle: (() -> Void)?

        init(maxBodyBytes: Int) { self.maxBodyBytes = maxBodyBytes }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func handlerRemoved(context: ChannelHandlerContext) {
            self.context = nil
            onIdle = nil  // it holds the connection, which holds this handler
        }

        func begin(_ request: Request, continuation: CheckedContinuation<Response, any Error>, channel: Channel) {
            guard case .idle = state, let context, channel.isActive else {
                continuation.resume(throwing: NotSent())
                return
            }
            state = .awaitingHead(continuation)
            keepAlive = request.head.isKeepAlive
            // A write that fails (a header value the encoder refuses, a connection reset) fails the exchange; otherwise
            // the caller would wait for an answer to a request that never left.
            let written = context.eventLoop.makePromise(of: Void.self)
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            written.futureResult.whenFailure { error in handler.value.fail(Failure("cannot send the request: \(error)")) }
            context.write(wrapOutboundOut(.head(request.head)), promise: nil)
            if let body = request.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            context.read()
        }

        func demand(_ continuation: CheckedContinuation<ByteBuffer?, any Error>) {
            switch state {
            case .streaming(let buffered?, let ended, nil):
                state = .streaming(buffered: nil, ended: ended, waiting: nil)
                continuation.resume(returning: buffered)
            case .streaming(nil, true, nil):
                endStream()
                continuation.resume(returning: nil)
            case .streaming(nil, false, nil):
                state = .streaming(buffered: nil, ended: false, waiting: continuation)
                context?.read()
            case .failed(let error):
                continuation.resume(throwing: error)
            default:
                continuation.resume(throwing: Failure("the upstream event stream is not readable"))
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                guard case .awaitingHead(let continuation) = state else { return fail(Failure("the upstream sent an answer nobody asked for")) }
                keepAlive = keepAlive && head.isKeepAlive
                let type = head.headers.first(name: "Content-Type")?.lowercased() ?? ""
                if type.hasPrefix("text/event-stream"), (200..<300).contains(head.status.code) {
                    state = .streaming(buffered: nil, ended: false, waiting: nil)
                    let reader = StreamReader(channel: context.channel, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
                    continuation.resume(
                        returning: Response(status: Int(head.status.code), headers: head.headers, body: .stream(EventStreamBody(reader: reader))))
                } else {
                    state = .collecting(continuation, head, context.channel.allocator.buffer(capacity: 0))
                }
            case .body(var chunk):
                switch state {
                case .collecting(let continuation, let head, var body):
                    guard body.readableBytes + chunk.readableBytes <= maxBodyBytes else {
                        return fail(Failure("the upstream's answer is larger than \(maxBodyBytes) bytes"))
                    }
                    state = .idle  // drops the state's reference to `body`, so the append below does not copy it
                    if body.readableBytes == 0 { body = chunk } else { body.writeBuffer(&chunk) }
                    state = .collecting(continuation, head, body)
                case .streaming(var buffered, let ended, let waiting):
                    if let waiting {
                        state = .streaming(buffered: nil, ended: ended, waiting: nil)
                        waiting.resume(returning: chunk)
                    } else {
                        if buffered == nil { buffered = chunk } else { buffered!.writeBuffer(&chunk) }
                        state = .streaming(buffered: buffered, ended: ended, waiting: nil)
                    }
                default:
                    fail(Failure("the upstream sent a body nobody asked for"))
                }
            case .end:
                switch state {
                case .collecting(let continuation, let head, let body):
                    state = .idle
                    finishExchange()
                    continuation.resume(returning: Response(status: Int(head.status.code), headers: head.headers, body: .complete(body)))
                case .streaming(let buffered, _, let waiting):
                    if let waiting {
                        endStream()
                        waiting.resume(returning: nil)
                    } else {
                        state = .streaming(buffered: buffered, ended: true, waiting: nil)
                    }
                default:
                    fail(Failure("the upstream ended an answer nobody asked for"))
                }
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            switch state {
            case .awaitingHead, .collecting, .idle: context.read()
            case .streaming(nil, false, _?): context.read()
            default: break
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            fail(Failure("the upstream closed the connection"))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // An answer that is not valid HTTP, or a request the encoder refused.
            fail(Failure("the HTTP exchange with the upstream failed: \(error)"))
            context.close(promise: nil)
        }

        /// After the last chunk of an event stream has been handed over.
        private func endStream() {
            state = .idle
            finishExchange()
        }

        private func finishExchange() {
            if keepAlive {
                onIdle?()
                context?.read()
            } else {
                context?.close(promise: nil)
            }
        }

        private func fail(_ error: any Error) {
            let previous = state
            state = .failed(error)
            switch previous {
            case .awaitingHead(let continuation), .collecting(let continuation, _, _): continuation.resume(throwing: error)
            case .streaming(_, _, let waiting?): waiting.resume(throwing: error)
            default: break
            }
            context?.close(promise: nil)
        }
    }
}
