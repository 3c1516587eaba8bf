import NIOCore
import NIOHTTP1

/// One keep-alive HTTP/1.1 connection to the server under test, carrying one request at a time.
///
/// The ``LoadDriver`` owns the connections and hands a request to an idle one with ``send(_:deadline:onOutcome:)``.
/// The handler calls `onOutcome` exactly once (as soon as the outcome is known, which for an event stream may be
/// before the response ends) and tells the driver when the connection is free again or closed.
final class MCPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private struct Exchange {
        var reader: ResponseReader
        var onOutcome: ((ResponseOutcome, _ sessionID: String?) -> Void)?
        let deadline: NIODeadline
        var keepAlive = true
    }

    private unowned let driver: LoadDriver
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?

    init(driver: LoadDriver) {
        self.driver = driver
    }

    /// Writes `request`; `onOutcome` is called once with what it came to. The connection must be idle.
    func send(_ request: HTTPRequest, deadline: NIODeadline, onOutcome: @escaping (ResponseOutcome, _ sessionID: String?) -> Void) {
        precondition(exchange == nil, "a request was sent on a busy connection")
        guard let context else {
            onOutcome(.connectionFailed("the connection is closed"), nil)
            return
        }
        exchange = Exchange(reader: ResponseReader(requestID: request.jsonRPCID), onOutcome: onOutcome, deadline: deadline)
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let body = request.body {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Gives up on the request in flight if its deadline has passed: reports a time-out and closes the connection,
    /// since an HTTP/1.1 connection cannot carry another request until the late answer has been read.
    func expire(ifPastDeadlineAt now: NIODeadline) {
        guard let deadline = exchange?.deadline, deadline <= now else { return }
        report(.timedOut)
        close()
    }

    func close() {
        context?.close(promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Mutate a copy with `exchange` cleared, so that appending to the body buffer never copies it.
        guard var current = exchange else { return }
        exchange = nil
        let outcome: ResponseOutcome?
        switch unwrapInboundIn(data) {
        case .head(let head):
            current.keepAlive = head.isKeepAlive
            current.reader.receiveHead(head)
            outcome = nil
        case .body(let buffer):
            outcome = current.reader.receiveBody(buffer)
        case .end:
            let outcome = current.reader.receiveEnd()
            if let outcome, let onOutcome = current.onOutcome {
                onOutcome(outcome, current.reader.sessionID)
            }
            if current.keepAlive {
                driver.connectionBecameIdle(self)
            } else {
                context.close(promise: nil)
            }
            return
        }
        if let outcome, let onOutcome = current.onOutcome {
            current.onOutcome = nil
            exchange = current
            onOutcome(outcome, current.reader.sessionID)
        } else {
            exchange = current
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        report(.connectionFailed(String(describing: error)))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        report(.connectionFailed("the server closed the connection"))
        exchange = nil
        driver.connectionClosed(self)
        context.fireChannelInactive()
    }

    /// Calls the pending `onOutcome`, if any, at most once; the exchange stays until the response ends or the
    /// connection closes.
    private func report(_ outcome: ResponseOutcome) {
        guard let onOutcome = exchange?.onOutcome else { return }
        exchange?.onOutcome = nil
        onOutcome(outcome, exchange?.reader.sessionID)
    }
}
