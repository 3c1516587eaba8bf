import Hummingbird
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Bounds on the gateway's HTTP connections, so that a client holding sockets open cannot exhaust the process.
///
/// Each connection is in one phase at a time, and each phase but one has a time bound:
/// - **head**: waiting for a request's head, from the connection's start or from the head's first byte: it must be
///   complete within `headerTimeout` (10 s by default), or the connection is closed (answered 408 if part of a head
///   came);
/// - **body**: the head has arrived, the body must end within `bodyTimeout` (60 s) of it, or the connection is closed;
/// - **idle**: every request answered, none begun: closed after `idleTimeout` (75 s);
/// - **answering**: a request read and its answer under way (a call, perhaps held for approval; an SSE stream): no bound
///   here (the answer's own bounds apply: `upstream_timeout`, the session's idle timeout, the approval's expiry).
///
/// At most `maxConnections` are open. A connection past the cap makes room by closing the connection that has waited
/// longest for a request's head (a client that opened a socket and sends nothing, or sends slowly) or, if none waits
/// for a head, the one idle longest between requests; when every connection is busy reading a body or being answered,
/// the new one is answered 503 and closed at once. So sockets held open by a client that sends nothing useful never keep
/// out a client that sends a request at once, and connections that carry work are never closed to make room.
///
/// One ``Handler`` per connection, first of the handlers after the HTTP codec; it puts a byte-level watcher of its own
/// in front of the codec (to see a head's first byte):
///
/// ```swift
/// .http1(configuration: .init(additionalChannelHandlers: [connections.handler(), hangUps.watcher()]))
/// ```
final class ConnectionGuard: Sendable {
    struct Settings: Sendable {
        var maxConnections: Int
        var headerTimeout: TimeAmount
        var bodyTimeout: TimeAmount
        var idleTimeout: TimeAmount
    }

    enum Phase: Sendable, Equatable {
        case head, body, answering, idle
    }

    /// Why the gateway closed a connection (the label of `tollgate_http_connections_closed_total`).
    enum Ending: String, Sendable {
        case headerTimeout = "header_timeout"
        case bodyTimeout = "body_timeout"
        case idle
        case evicted
        case refused
    }

    private struct Entry {
        let channel: any Channel
        var phase: Phase
        var since: NIODeadline
    }

    /// Connections that may make room for a new one, in the order they entered their phase; an item whose connection
    /// has left the phase since (or is gone) is skipped when read, and dropped when the queue is compacted (once it holds
    /// more than twice as many items as there are connections).
    private struct Queue {
        var items: [(id: ObjectIdentifier, since: NIODeadline)] = []
        var start = 0
    }

    private struct Table {
        var entries: [ObjectIdentifier: Entry] = [:]
        var heads = Queue()
        var idles = Queue()

        mutating func entered(_ id: ObjectIdentifier, _ phase: Phase, since: NIODeadline) {
            switch phase {
            case .head: Self.append(id, since, to: &heads, phase: .head, entries: entries)
            case .idle: Self.append(id, since, to: &idles, phase: .idle, entries: entries)
            case .body, .answering: break
            }
        }

        /// The connection longest in `phase` (`.head` or `.idle`), taken out of the table.
        mutating func takeOldest(_ phase: Phase) -> (any Channel)? {
            phase == .head ? Self.take(from: &heads, phase: .head, entries: &entries) : Self.take(from: &idles, phase: .idle, entries: &entries)
        }

        private static func append(
            _ id: ObjectIdentifier, _ since: NIODeadline, to queue: inout Queue, phase: Phase, entries: [ObjectIdentifier: Entry]
        ) {
            queue.items.append((id, since))
            guard queue.items.count - queue.start > 2 * entries.count + 64 else { return }
            queue.items = queue.items[queue.start...].filter { entries[$0.id]?.phase == phase && entries[$0.id]?.since == $0.since }
            queue.start = 0
        }

        private static func take(from queue: inout Queue, phase: Phase, entries: inout [ObjectIdentifier: Entry]) -> (any Channel)? {
            while queue.start < queue.items.count {
                let item = queue.items[queue.start]
                queue.start += 1
                if let entry = entries[item.id], entry.phase == phase, entry.since == item.since {
                    entries[item.id] = nil
                    return entry.channel
                }
            }
            return nil
        }
    }

    let settings: Settings
    private let table = Mutex(Table())
    private let metrics: GatewayMetrics
    private let logger: Logger

    init(settings: Settings, metrics: GatewayMetrics, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    /// The handler to put in each connection's pipeline, after the HTTP codec.
    func handler() -> Handler { Handler(guard: self) }

    /// Connections open now.
    var openConnections: Int { table.withLock { $0.entries.count } }

    /// Admits a new connection, closing another to make room past the cap; `false`: refused (every connection is busy).
    fileprivate func admit(_ channel: any Channel, since: NIODeadline) -> Bool {
        let id = ObjectIdentifier(channel)
        let (admitted, evicted) = table.withLock { table -> (Bool, (any Channel)?) in
            var evicted: (any Channel)?
            if table.entries.count >= settings.maxConnections {
                evicted = table.takeOldest(.head) ?? table.takeOldest(.idle)
                guard evicted != nil else { return (false, nil) }
            }
            table.entries[id] = Entry(channel: channel, phase: .head, since: since)
            table.entered(id, .head, since: since)
            metrics.httpConnections(table.entries.count)
            return (true, evicted)
        }
        if let evicted {
            metrics.httpConnectionClosed(Ending.evicted.rawValue)
            logger.debug("connection cap reached: closing the connection that waited longest without a request")
            evicted.close(promise: nil)
        }
        if !admitted {
            metrics.httpConnectionClosed(Ending.refused.rawValue)
            logger.warning(
                "connection refused: every connection is busy", metadata: ["max_connections": "\(settings.maxConnections)"])
        }
        return admitted
    }

    fileprivate func entered(_ channel: any Channel, _ phase: Phase, since: NIODeadline) {
        let id = ObjectIdentifier(channel)
        table.withLock { table in
            guard table.entries[id] != nil else { return }
            table.entries[id]?.phase = phase
            table.entries[id]?.since = since
            table.entered(id, phase, since: since)
        }
    }

    fileprivate func closed(_ channel: any Channel) {
        table.withLock { table in
            guard table.entries.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            metrics.httpConnections(table.entries.count)
        }
    }

    fileprivate func ended(_ ending: Ending) {
        metrics.httpConnectionClosed(ending.rawValue)
    }

    /// Follows one connection's requests and answers (after the HTTP codec), keeps its phase's deadline, and closes the
    /// connection past it.
    final class Handler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart

        private enum Reading { case head, body, between }

        private let guardian: ConnectionGuard
        private var channel: (any Channel)?
        private var context: ChannelHandlerContext?
        fileprivate var bytes: ByteWatcher?
        private var reading = Reading.head
        /// Whether a byte of the head now awaited has arrived.
        private var headStarted = false
        /// Requests whose head was read and whose answer is not written in full yet.
        private var answering = 0
        private var phase = Phase.head
        private var since = NIODeadline.now()
        private var timer: Scheduled<Void>?
        private var timerAt: NIODeadline?

        fileprivate init(guard guardian: ConnectionGuard) { self.guardian = guardian }

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
            channel = context.channel
            let watcher = ByteWatcher(handler: self)
            bytes = watcher
            try? context.pipeline.syncOperations.addHandler(watcher, position: .first)
            since = .now()
            guard guardian.admit(context.channel, since: since) else {
                // Past the cap with every connection busy: a 503 the client can read, and the connection closed.
                context.eventLoop.assumeIsolated().execute {
                    self.closeWithAnswer(
                        "503 Service Unavailable",
                        #"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Service Unavailable: too many connections are open on this gateway (limits.max_connections); try again later"}}"#,
                        refused: true)
                }
                return
            }
            schedule()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            timer?.cancel()
            timer = nil
            if let channel { guardian.closed(channel) }
            channel = nil
            self.context = nil
            bytes = nil
        }

        func channelInactive(context: ChannelHandlerContext) {
            timer?.cancel()
            timer = nil
            if let channel { guardian.closed(channel) }
            channel = nil
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head:
                reading = .body
                headStarted = false
                answering += 1
                update()
            case .body: break
            case .end:
                reading = .between
                update()
            }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) {
                answering = max(0, answering - 1)
                update()
            }
            context.write(data, promise: promise)
        }

        /// Bytes came in front of the codec: between requests, they begin the next one's head.
        fileprivate func bytesArrived() {
            switch reading {
            case .head: headStarted = true
            case .body: break
            case .between:
                reading = .head
                headStarted = true
                update()
            }
        }

        private var currentPhase: Phase {
            switch reading {
            case .head: .head
            case .body: .body
            case .between: answering > 0 ? .answering : .idle
            }
        }

        private func update() {
            let now = currentPhase
            guard now != phase else { return }
            phase = now
            since = .now()
            if let channel { guardian.entered(channel, phase, since: since) }
            schedule()
        }

        private var deadline: NIODeadline? {
            switch phase {
            case .head: since + guardian.settings.headerTimeout
            case .body: since + guardian.settings.bodyTimeout
            case .idle: since + guardian.settings.idleTimeout
            case .answering: nil
            }
        }

        /// Arms the timer for the phase's deadline, unless it is armed for an earlier time (it then looks again).
        private func schedule() {
            guard let deadline, let context else { return }
            if let timerAt, timer != nil, timerAt <= deadline { return }
            timer?.cancel()
            timerAt = deadline
            timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.expire() }
        }

        private func expire() {
            timer = nil
            timerAt = nil
            guard let deadline, channel != nil else { return }
            guard deadline <= .now() else { return schedule() }
            switch phase {
            case .head:
                guardian.ended(.headerTimeout)
                // A client that sent part of a head is told why; a connection on which nothing came (a client's
                // connection opened ahead of need) is closed as an idle one is, and the client opens another.
                if answering == 0, headStarted {
                    closeWithAnswer(
                        "408 Request Timeout",
                        #"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Request Timeout: the request's head did not arrive in time (limits.header_timeout)"}}"#,
                        refused: false)
                } else {
                    context?.close(promise: nil)
                }
            case .body:
                guardian.ended(.bodyTimeout)
                context?.close(promise: nil)
            case .idle:
                guardian.ended(.idle)
                context?.close(promise: nil)
            case .answering: break
            }
        }

        /// Writes a whole HTTP response in front of the codec (no request is being answered) and closes the connection. A
        /// `refused` one (with `Retry-After`) is closed after 250 ms instead of 1 s, so that a flood of them holds few
        /// sockets.
        private func closeWithAnswer(_ status: String, _ body: String, refused: Bool) {
            guard let context else { return }
            var head = "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
            if refused { head += "Retry-After: 1\r\n" }
            let answer = ByteBuffer(string: head + "\r\n" + body)
            guard let watcher = bytes, let bytes = watcher.context else { return context.close(promise: nil) }
            // The answer, then the end of output (a FIN after it); what the client still sends is read and dropped for a
            // moment, so that the close does not reset the connection before the client has read the answer.
            watcher.discarding = true
            bytes.writeAndFlush(NIOAny(answer), promise: nil)
            bytes.close(mode: .output, promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: refused ? .milliseconds(250) : .seconds(1)) { context.close(promise: nil) }
        }
    }

    /// Sees the connection's bytes before the HTTP codec, for the first byte of a request's head; writes the gateway's
    /// own 408 and 503 answers straight to the socket.
    final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer

        private weak var handler: Handler?
        fileprivate var context: ChannelHandlerContext?

        fileprivate init(handler: Handler) { self.handler = handler }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

        /// The gateway has answered and closed its output: what comes is dropped, and its end closes the connection.
        fileprivate var discarding = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !discarding else { return }
            handler?.bytesArrived()
            context.fireChannelRead(data)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            if discarding { context.read() }
            context.fireChannelReadComplete()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if discarding, case ChannelEvent.inputClosed? = event as? ChannelEvent { return context.close(promise: nil) }
            context.fireUserInboundEventTriggered(event)
        }
    }
}
