import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import TollgateServer

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
}
