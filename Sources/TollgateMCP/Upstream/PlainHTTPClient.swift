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
/// - At most `maxConnectionsPerTarget` are open to one upstream at a time (64, as AsyncHTTPClient had); a request
///   beyond that waits for one to be free, in order.
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

    /// Whether an answer is read as an event stream: a success whose type is `text/event-stream`. Every other answer
    /// is read whole.
    public static func isEventStream(status: Int, headers: HTTPHeaders) -> Bool {
        (200..<300).contains(status) && headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/event-stream") == true
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    private let group: any EventLoopGroup
    private let maxBodyBytes: Int
    private let idleTimeout: Duration
    private let maxConnectionsPerTarget: Int
    private let pool = Mutex(Pool())
    private let waiterIDs = Atomic<Int>(0)
    /// Closes connections idle past the idle timeout, every half of it; started when a first connection goes idle.
    private let sweeper = Mutex<(task: RepeatedTask?, stopped: Bool)>((nil, false))

    private struct Pool {
        var idle: [Target: [Idle]] = [:]
        /// Connections open or being opened, per target.
        var counts: [Target: Int] = [:]
        /// Requests waiting for a connection to a target at its limit, oldest first.
        var waiters: [Target: [Waiter]] = [:]
        /// Every open connection, idle or busy, for `shutdown()`.
        var open: [ObjectIdentifier: Channel] = [:]
        var closed = false

        mutating func popWaiter(_ target: Target) -> Waiter? {
            guard var list = waiters[target], !list.isEmpty else { return nil }
            let first = list.removeFirst()
            waiters[target] = list.isEmpty ? nil : list
            return first
        }
    }

    /// What a request gets: a kept-alive connection, or the right to open one.
    private enum Grant: Sendable {
        case reuse(Connection)
        case connect
    }

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Grant, any Error>
    }

    private struct Idle {
        var connection: Connection
        var since: ContinuousClock.Instant

        /// Still worth reusing at `now`: kept for less than `timeout`, and not closed by the server.
        func isFresh(at now: ContinuousClock.Instant, within timeout: Duration) -> Bool {
            now - since < timeout && connection.channel.isActive
        }
    }

    /// - Parameters:
    ///   - maxBodyBytes: the largest complete body accepted; a larger answer fails the request and closes its connection.
    ///   - idleTimeout: how long an idle connection is kept for reuse.
    ///   - maxConnectionsPerTarget: the most connections open to one upstream at a time.
    public init(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, maxBodyBytes: Int = 16 << 20,
        idleTimeout: Duration = .seconds(3), maxConnectionsPerTarget: Int = 64
    ) {
        self.group = group
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
        self.maxConnectionsPerTarget = max(1, maxConnectionsPerTarget)
    }

    /// Sends one request and waits for its answer's head (and, unless it is an event stream, its whole body).
    ///
    /// Throws ``NotSent`` when the request was certainly not written (no connection could be had: refused, timed out,
    /// the client shut down, the wait for a free one cancelled; or the connections found had closed). Any other error
    /// came after the request started out, which the upstream may have received.
    ///
    /// A request whose task is cancelled while it waits for a connection (behind the limit) leaves the line and is never
    /// written: it throws ``NotSent`` with a `CancellationError`, also when a connection came free just as it was
    /// cancelled. `urgent`: it waits at the head of the line, before every request already waiting (a
    /// `notifications/cancelled`, which is useless behind the calls it cancels).
    public func execute(
        _ method: HTTPMethod, _ target: Target, headers: [(name: String, value: String)], body: ByteBuffer?, urgent: Bool = false
    ) async throws -> Response {
        let connection = try await leaseOrNotSent(target, urgent: urgent)
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target.pathAndQuery)
        head.headers.reserveCapacity(headers.count + 2)
        head.headers.add(name: "Host", value: target.authority)
        for header in headers { head.headers.add(name: header.name, value: header.value) }
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        let request = Request(head: head, body: body)
        do {
            return try await exchange(request, on: connection)
        } catch let error as NotSent {
            // The pooled connection closed before anything was written: the request can safely go on another one,
            // unless it was given up meanwhile.
            guard !Task.isCancelled else { throw error.cause == nil ? NotSent(cause: CancellationError()) : error }
            return try await exchange(request, on: try await leaseOrNotSent(target, urgent: urgent))
        }
    }

    /// `lease`, whose failures all come before the request is written; a connection had for a request given up
    /// meanwhile goes back unused.
    private func leaseOrNotSent(_ target: Target, urgent: Bool) async throws(NotSent) -> Connection {
        let connection: Connection
        do {
            connection = try await lease(target, urgent: urgent)
        } catch {
            throw NotSent(cause: error)
        }
        guard !Task.isCancelled else {
            release(connection)
            throw NotSent(cause: CancellationError())
        }
        return connection
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
        sweeper.withLock { sweeper in
            sweeper.stopped = true
            sweeper.task?.cancel()
        }
        let (channels, waiters) = pool.withLock { pool in
            pool.closed = true
            pool.idle.removeAll()
            defer { pool.waiters.removeAll() }
            return (Array(pool.open.values), pool.waiters.values.joined().map(\.continuation))
        }
        for waiter in waiters { waiter.resume(throwing: Failure("the HTTP client is shut down")) }
        for channel in channels { try? await channel.close() }
    }

    /// The number of open connections, idle or busy (for tests).
    public var openConnections: Int { pool.withLock { $0.open.count } }

    // MARK: - The pool

    private func lease(_ target: Target, urgent: Bool) async throws -> Connection {
        var stale: [Channel] = []
        let onOwnLoop = callerLoop != nil
        var grant = try pool.withLock { pool throws(Failure) in
            try self.grant(target, in: &pool, stale: &stale, canOpenHere: onOwnLoop)
        }
        // Closed before any wait: each holds its slot until it has closed.
        for channel in stale { channel.close(promise: nil) }
        if grant == nil {
            // At the limit: wait in line for a connection or a free slot.
            let id = waiterIDs.add(1, ordering: .relaxed).newValue
            grant = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                    var late: [Channel] = []
                    let now = Result { () throws(Failure) in
                        try pool.withLock { pool throws(Failure) -> Grant? in
                            // Something may have come free since the first look.
                            if let grant = try self.grant(target, in: &pool, stale: &late, canOpenHere: false) { return grant }
                            // Cancelled before it could wait (its cancellation handler found nobody to take out).
                            if Task.isCancelled { throw Failure("the request was given up while it waited for a connection") }
                            let waiter = Waiter(id: id, continuation: continuation)
                            if urgent {
                                pool.waiters[target, default: []].insert(waiter, at: 0)
                            } else {
                                pool.waiters[target, default: []].append(waiter)
                            }
                            return nil
                        }
                    }
                    for channel in late { channel.close(promise: nil) }
                    switch now {
                    case .success(let grant?): continuation.resume(returning: grant)
                    case .success(nil): break
                    case .failure(let error): continuation.resume(throwing: error)
                    }
                }
            } onCancel: {
                let waiter = pool.withLock { pool -> Waiter? in
                    guard var list = pool.waiters[target], let index = list.firstIndex(where: { $0.id == id }) else { return nil }
                    let waiter = list.remove(at: index)
                    pool.waiters[target] = list.isEmpty ? nil : list
                    return waiter
                }
                waiter?.continuation.resume(throwing: CancellationError())
            }
        }
        switch grant {
        case .reuse(let connection)?: return connection
        case .connect?, nil: return try await connect(target)
        }
    }

    /// A kept-alive connection that is still fresh, or a free slot (taken), or nil at the limit. Connections kept too
    /// long go to `stale`, to be closed outside the lock (each still holds its slot until it has closed).
    ///
    /// The most recent idle connection on the caller's event loop comes first: a request written and answered on the
    /// loop its caller runs on needs no hand-over between threads, where one on another loop costs two (a wake-up to
    /// write it, another to hand the answer back). So when `canOpenHere` (the caller runs on one of the client's loops)
    /// and no idle connection is on its loop, a new one is opened there while the limit allows, rather than borrowing
    /// another loop's; otherwise the most recent idle connection serves. With one loop per core, that is at most one
    /// idle connection per core more than a pool blind to loops would keep.
    private func grant(_ target: Target, in pool: inout Pool, stale: inout [Channel], canOpenHere: Bool) throws(Failure) -> Grant? {
        guard !pool.closed else { throw Failure("the HTTP client is shut down") }
        let now = ContinuousClock.now
        let hasRoom = pool.counts[target, default: 0] < maxConnectionsPerTarget
        while var list = pool.idle[target], !list.isEmpty {
            let here = list.lastIndex { $0.connection.channel.eventLoop.inEventLoop }
            if here == nil, canOpenHere, hasRoom { break }
            let last = list.remove(at: here ?? list.count - 1)
            pool.idle[target] = list.isEmpty ? nil : list
            if last.isFresh(at: now, within: idleTimeout) { return .reuse(last.connection) }
            stale.append(last.connection.channel)
        }
        guard hasRoom else { return nil }
        pool.counts[target, default: 0] += 1
        return .connect
    }

    /// A slot given back (a connection closed, or one failed to open): to the first waiter, if any.
    private func releaseSlot(_ target: Target, in pool: inout Pool) -> Waiter? {
        pool.counts[target, default: 1] -= 1
        if pool.counts[target] == 0 { pool.counts[target] = nil }
        guard let waiter = pool.popWaiter(target) else { return nil }
        pool.counts[target, default: 0] += 1
        return waiter
    }

    /// The event loop the caller runs on, when it is one of the client's.
    private var callerLoop: (any EventLoop)? { group.makeIterator().first { $0.inEventLoop } }

    private func connect(_ target: Target) async throws -> Connection {
        let maxBodyBytes = maxBodyBytes
        // On the caller's event loop when it runs on one of the client's: see `grant`.
        let bootstrap = ClientBootstrap(group: callerLoop ?? group)
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
            pool.withLock { releaseSlot(target, in: &$0) }?.continuation.resume(returning: .connect)
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

    /// A connection whose answer has ended: to the first waiter, else to the idle list.
    private func release(_ connection: Connection) {
        enum Next { case handTo(Waiter), kept, close }
        let next = pool.withLock { pool -> Next in
            guard !pool.closed, connection.channel.isActive else { return .close }
            if let waiter = pool.popWaiter(connection.target) { return .handTo(waiter) }
            pool.idle[connection.target, default: []].append(Idle(connection: connection, since: .now))
            return .kept
        }
        switch next {
        case .handTo(let waiter): waiter.continuation.resume(returning: .reuse(connection))
        case .kept: startSweeping()
        case .close: connection.channel.close(promise: nil)
        }
    }

    /// Starts the sweep of idle connections, once: a connection nobody asks for again is closed within one and a half
    /// idle timeouts, rather than held open until the server closes it.
    private func startSweeping() {
        sweeper.withLock { sweeper in
            guard sweeper.task == nil, !sweeper.stopped else { return }
            let (seconds, attoseconds) = (idleTimeout / 2).components
            let interval = TimeAmount.nanoseconds(max(1_000_000, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
            sweeper.task = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
                guard let self else { return task.cancel() }
                self.closeIdleConnections()
            }
        }
    }

    /// Closes every idle connection that a request would no longer reuse (each holds its slot until it has closed).
    private func closeIdleConnections() {
        let stale = pool.withLock { pool -> [Channel] in
            let now = ContinuousClock.now
            var stale: [Channel] = []
            for (target, list) in pool.idle {
                var fresh: [Idle] = []
                for idle in list {
                    if idle.isFresh(at: now, within: idleTimeout) { fresh.append(idle) } else { stale.append(idle.connection.channel) }
                }
                if fresh.count < list.count { pool.idle[target] = fresh.isEmpty ? nil : fresh }
            }
            return stale
        }
        for channel in stale { channel.close(promise: nil) }
    }

    /// A connection that has closed: out of the pool, and its slot given back.
    private func forget(_ connection: Connection) {
        let id = ObjectIdentifier(connection.channel)
        let waiter = pool.withLock { pool -> Waiter? in
            pool.open[id] = nil
            if var list = pool.idle[connection.target] {
                list.removeAll { ObjectIdentifier($0.connection.channel) == id }
                pool.idle[connection.target] = list.isEmpty ? nil : list
            }
            return releaseSlot(connection.target, in: &pool)
        }
        waiter?.continuation.resume(returning: .connect)
    }
}

extension PlainHTTPClient {
    /// A request that was not written: no connection could be had, or the one leased had closed before it.
    public struct NotSent: Error, CustomStringConvertible {
        /// What kept the request from being written (`CancellationError` for a wait cancelled, ...); nil when the
        /// connection leased had closed.
        public var cause: (any Error)?

        public var description: String { cause.map { "\($0)" } ?? "the connection closed before the request was written" }
    }

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
                if PlainHTTPClient.isEventStream(status: Int(head.status.code), headers: head.headers) {
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
