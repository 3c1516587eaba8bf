import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

@testable import TollgateServer

#if canImport(Glibc)
    import Glibc
#endif

/// The hang-up watch on one connection, on an embedded channel: what runs when, and that nothing outlives the
/// connection. (The gateway end to end: `GatewayOperationsTests` and `GatewayInteropTests`.)
@Suite struct HangUpsTests {
    final class Counter: Sendable {
        private let value = Mutex(0)
        var count: Int { value.withLock { $0 } }
        func bump() { value.withLock { $0 += 1 } }
    }

    func connection(_ hangUps: HangUps) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(hangUps.watcher())
        return channel
    }

    @Test func theEndOfInputRunsTheArmedActionOnce() throws {
        let hangUps = HangUps()
        let channel = try connection(hangUps)
        let ran = Counter()
        _ = hangUps.arm(channel) { ran.bump() }
        try channel.writeInbound(ByteBuffer(string: "request bytes pass through"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "request bytes pass through"))
        #expect(ran.count == 0)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(ran.count == 1)
        _ = try channel.finish()
        #expect(ran.count == 1, "the close after it runs nothing more")
        #expect(hangUps.watchedConnections == 0, "a closed connection is forgotten")
    }

    @Test func aDisarmedWatchRunsNothing() throws {
        let hangUps = HangUps()
        let channel = try connection(hangUps)
        let ran = Counter()
        let watch = hangUps.arm(channel) { ran.bump() }
        watch.disarm()
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        _ = try channel.finish()
        #expect(ran.count == 0)
    }

    @Test func anActionArmedAfterTheHangUpRunsAtOnce() throws {
        let hangUps = HangUps()
        let channel = try connection(hangUps)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let ran = Counter()
        _ = hangUps.arm(channel) { ran.bump() }
        #expect(ran.count == 1)
        _ = try channel.finish()
    }

    @Test func aLateDisarmDoesNotDisarmTheNextRequestsWatch() throws {
        let hangUps = HangUps()
        let channel = try connection(hangUps)
        let first = Counter()
        let second = Counter()
        let earlier = hangUps.arm(channel) { first.bump() }
        _ = hangUps.arm(channel) { second.bump() }
        earlier.disarm()
        _ = try channel.finish()
        #expect(first.count == 0)
        #expect(second.count == 1, "the connection closing is the current request's hang-up")
    }

    @Test func otherEventsAndUnwatchedConnectionsRunNothing() throws {
        let hangUps = HangUps()
        let channel = try connection(hangUps)
        let ran = Counter()
        _ = hangUps.arm(channel) { ran.bump() }
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
        channel.pipeline.fireUserInboundEventTriggered("something else")
        #expect(ran.count == 0)
        let unwatched = EmbeddedChannel()
        _ = hangUps.arm(unwatched) { ran.bump() }.disarm()
        _ = try unwatched.finish()
        #expect(ran.count == 0)
        #expect(hangUps.watchedConnections == 1)
        _ = try channel.finish()
        #expect(ran.count == 1)
        #expect(hangUps.watchedConnections == 0)
    }

    /// On a real socket: every accepted connection asks the kernel to probe it when idle, so an agent's host that
    /// vanishes without a FIN or RST ends its connection (a hang-up) within about two minutes.
    @Test func anAgentsConnectionIsProbedWhenIdle() async throws {
        let hangUps = HangUps()
        let accepted = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: (any Channel).self)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(hangUps.watcher())
                    accepted.succeed(child)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: server.localAddress!).get()
        defer { client.close(promise: nil) }
        let child = try await accepted.futureResult.get()
        #expect(try await child.getOption(.socketOption(.so_keepalive)).get() != 0)
        #expect(try await child.getOption(.tcpOption(.init(rawValue: TCP_KEEPIDLE))).get() == HangUps.Watcher.keepAliveIdle)
        #expect(try await child.getOption(.tcpOption(.init(rawValue: TCP_KEEPINTVL))).get() == HangUps.Watcher.keepAliveInterval)
        #expect(try await child.getOption(.tcpOption(.init(rawValue: TCP_KEEPCNT))).get() == HangUps.Watcher.keepAliveProbes)
        #expect(try await client.getOption(.socketOption(.so_keepalive)).get() == 0, "a socket without the watcher is not probed")
        #expect(hangUps.watchedConnections == 1)
    }
}
