import Hummingbird
import NIOCore
import NIOHTTPTypes

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads and throws away the rest of a request's body when the request was answered before its body was read in full
/// (a 413 for a body over the limit, a 401 or a 404 of a POST), so that the client reads the answer.
///
/// Most HTTP clients send the whole body before they read anything. A server that answers early and then stops reading
/// (with `Connection: close` the HTTP server half-closes and reads no more) leaves such a client blocked in its send
/// with the answer unread in its socket, until its own time-out; with keep-alive, the server read the rest without any
/// bound. Here the rest is read and dropped, at most ``maxBytes`` and for at most ``maxTime`` after the answer; once
/// the body has ended the connection goes on (keep-alive) or is closed (its output was already closed). Past either
/// bound the connection is reset (`SO_LINGER` 0): the client's send fails at once and its read still returns the
/// answer, which was sent long before; the gateway keeps no socket half-open with unread data.
///
/// One per connection, after the HTTP codec:
///
/// ```swift
/// .http1(configuration: .init(additionalChannelHandlers: [UnreadBodyDrain()]))
/// ```
final class UnreadBodyDrain: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The most body bytes read and dropped after the answer.
    static let maxBytes = 64 << 20
    /// How long after the answer the rest of the body may take.
    static let maxTime = TimeAmount.seconds(1)

    /// Requests whose body has ended, and responses written in full: the connection's requests are answered in order,
    /// so while more are answered than have ended, the body now arriving is that of a request already answered.
    private var requestsEnded = 0
    private var answered = 0
    private var dropped = 0
    private var deadline: Scheduled<Void>?
    private var outputClosed = false

    private var draining: Bool { answered > requestsEnded }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            context.fireChannelRead(data)
        case .body(let buffer):
            guard draining else { return context.fireChannelRead(data) }
            dropped += buffer.readableBytes
            if dropped > Self.maxBytes { reset(context) }
        case .end:
            let wasDraining = draining
            requestsEnded += 1
            context.fireChannelRead(data)
            guard wasDraining else { return }
            deadline?.cancel()
            deadline = nil
            // Everything the client sent is read: closing now sends a plain FIN, and the client has its answer.
            if outputClosed { context.close(promise: nil) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The request's reader may have stopped asking for more (nobody reads a connection that is closing).
        if draining { context.read() }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        answered += 1
        context.write(data, promise: promise)
        guard draining, deadline == nil else { return }
        dropped = 0
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: Self.maxTime) {
            self.deadline = nil
            if self.draining { self.reset(context) }
        }
        context.read()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output { outputClosed = true }
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    /// Closes the connection with a reset: the unread rest of the body is dropped by the kernel, not kept half-open.
    private func reset(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        if let socket = context.channel as? any SocketOptionProvider {
            _ = socket.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        context.close(promise: nil)
    }
}
