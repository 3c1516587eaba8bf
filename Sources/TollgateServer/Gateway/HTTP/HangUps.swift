import Hummingbird
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Tells a request's handler when the agent hangs up while its answer is under way.
///
/// An agent that closes its connection before the answer came is cancelling the call: a 2026-07-28 client cancels no
/// other way, and any client that gives up drops its connection. HTTP/1.1 keeps no more requests coming on a
/// connection whose client has closed its side, so the end of input (or of the connection) is the signal. Without a
/// watch, the gateway learnt of it only when it next wrote to the agent, and the upstream went on with the call until
/// the gateway's time-out.
///
/// Each connection's pipeline has a `Watcher`; a handler arms a watch on its request's connection while the answer is
/// under way and disarms it once the answer is written:
///
/// ```swift
/// let watch = hangUps.arm(context.channel) { Task { await relay.abandon(id) } }
/// defer { watch.disarm() }
/// ```
final class HangUps: Sendable {
    private struct Connection {
        var action: (@Sendable () -> Void)?
        var generation: UInt64 = 0
        var hungUp = false
    }

    private let connections = Mutex<[ObjectIdentifier: Connection]>([:])

    /// A watch on one request's connection.
    struct Watch: Sendable {
        fileprivate let hangUps: HangUps?
        fileprivate let connection: ObjectIdentifier
        fileprivate let generation: UInt64

        /// The answer is done: a hang-up from now on is not this request's.
        func disarm() {
            hangUps?.connections.withLock { connections in
                guard connections[connection]?.generation == generation else { return }
                connections[connection]?.action = nil
            }
        }
    }

    /// The handler to put in each connection's pipeline.
    func watcher() -> Watcher { Watcher(hangUps: self) }

    /// Runs `onHangUp` (on the connection's event loop, so it must not block) if the agent hangs up before the watch is
    /// disarmed; at once if it already has. A connection without a `Watcher` is never watched.
    func arm(_ channel: any Channel, onHangUp: @escaping @Sendable () -> Void) -> Watch {
        let id = ObjectIdentifier(channel)
        enum Armed { case watching(UInt64), hungUp, unwatched }
        let armed = connections.withLock { connections -> Armed in
            guard var connection = connections[id] else { return .unwatched }
            if connection.hungUp { return .hungUp }
            connection.generation += 1
            connection.action = onHangUp
            connections[id] = connection
            return .watching(connection.generation)
        }
        switch armed {
        case .watching(let generation): return Watch(hangUps: self, connection: id, generation: generation)
        case .hungUp:
            onHangUp()
            return Watch(hangUps: nil, connection: id, generation: 0)
        case .unwatched: return Watch(hangUps: nil, connection: id, generation: 0)
        }
    }

    /// Connections watched now (for tests: each leaves when it closes).
    var watchedConnections: Int { connections.withLock { $0.count } }

    fileprivate func opened(_ id: ObjectIdentifier) {
        connections.withLock { $0[id] = Connection() }
    }

    fileprivate func hungUp(_ id: ObjectIdentifier, closed: Bool) {
        let action = connections.withLock { connections -> (@Sendable () -> Void)? in
            let action = connections[id]?.action
            if closed {
                connections[id] = nil
            } else {
                connections[id]?.hungUp = true
                connections[id]?.action = nil
            }
            return action
        }
        action?()
    }

    /// Watches one connection: passes everything through, and reports the end of its input or of the connection.
    final class Watcher: ChannelInboundHandler, RemovableChannelHandler {
        /// Whatever the HTTP codec makes of the bytes (its request parts), passed on unread.
        typealias InboundIn = NIOAny

        private let hangUps: HangUps
        private var id: ObjectIdentifier?

        init(hangUps: HangUps) { self.hangUps = hangUps }

        func handlerAdded(context: ChannelHandlerContext) {
            let id = ObjectIdentifier(context.channel)
            self.id = id
            hangUps.opened(id)
            Self.probeWhenIdle(context.channel)
        }

        /// TCP keep-alive on the connection: the first probe after `keepAliveIdle` seconds of silence, then one every
        /// `keepAliveInterval`, and the connection closed (a hang-up) after `keepAliveProbes` unanswered ones, about two
        /// minutes in all. An agent's host that vanishes sends neither FIN nor RST; without probes its connection was
        /// noticed only at the gateway's next write, which for a call held for approval may come hours later, and the
        /// call was then released upstream for nobody. Channels that are not sockets (tests' embedded ones) are left
        /// as they are.
        static func probeWhenIdle(_ channel: any Channel) {
            guard let options = channel.syncOptions else { return }
            try? options.setOption(.socketOption(.so_keepalive), value: 1)
            try? options.setOption(.tcpOption(.init(rawValue: TCP_KEEPIDLE)), value: keepAliveIdle)
            try? options.setOption(.tcpOption(.init(rawValue: TCP_KEEPINTVL)), value: keepAliveInterval)
            try? options.setOption(.tcpOption(.init(rawValue: TCP_KEEPCNT)), value: keepAliveProbes)
        }

        static let keepAliveIdle = 60
        static let keepAliveInterval = 15
        static let keepAliveProbes = 4

        func handlerRemoved(context: ChannelHandlerContext) {
            if let id { hangUps.hungUp(id, closed: true) }
            id = nil
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.fireChannelRead(data)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let id, case ChannelEvent.inputClosed? = event as? ChannelEvent { hangUps.hungUp(id, closed: false) }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if let id { hangUps.hungUp(id, closed: true) }
            id = nil
            context.fireChannelInactive()
        }
    }
}
