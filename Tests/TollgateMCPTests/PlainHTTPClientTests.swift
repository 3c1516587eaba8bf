import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import TollgateMCP

/// The lean HTTP/1.1 client against a TCP server that answers with scripted bytes, so that every framing, keep-alive,
/// close and garbage case is exact. (Real MCP servers over HTTP are in TollgateServerTests' interop tests.)
@Suite struct PlainHTTPClientTests {
    @Test func aJSONAnswerComesBackWholeAndItsConnectionIsReused() async throws {
        let server = try await ScriptedHTTPServer { request, _ in
            let body = "{\"echo\":\(request.body.count)}"
            return [.send(ScriptedHTTPServer.answer(body))]
        }
        defer { server.stop() }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        for index in 0..<3 {
            let body = String(repeating: "x", count: 10 + index)
            let response = try await client.execute(
                .POST, server.target, headers: [(name: "Content-Type", value: "application/json")], body: ByteBuffer(string: body))
            #expect(response.status == 200)
            #expect(response.headers.first(name: "Content-Type") == "application/json")
            guard case .complete(let answer) = response.body else {
                Issue.record("a JSON answer is complete")
                return
            }
            #expect(String(buffer: answer) == "{\"echo\":\(10 + index)}")
        }
        #expect(server.accepted == 1, "three requests, one connection")
        let first = try #require(server.requests.first)
        #expect(first.head.hasPrefix("POST /mcp?x=1 HTTP/1.1\r\n"), "\(first.head)")
        #expect(first.head.contains("Host: 127.0.0.1:\(server.port)\r\n"), "\(first.head)")
        #expect(first.head.contains("Content-Length: 10\r\n"), "\(first.head)")
        #expect(first.head.contains("Content-Type: application/json\r\n"), "\(first.head)")
    }

    @Test func anEventStreamIsReadAsItArrivesThenItsConnectionIsReused() async throws {
        let secondPart = Gate()
        let server = try await ScriptedHTTPServer { _, index in
            guard index == 0 else { return [.send(ScriptedHTTPServer.answer("{}"))] }
            return [
                .send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"),
                .send(ScriptedHTTPServer.chunk("data: one\n\n")),
                .waitFor(secondPart),
                .send(ScriptedHTTPServer.chunk("data: two\n\n") + "0\r\n\r\n"),
            ]
        }
        defer { server.stop() }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        let response = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        guard case .stream(let body) = response.body else {
            Issue.record("an event stream is streamed")
            return
        }
        var iterator = body.makeAsyncIterator()
        // The first event arrives while the server still holds the second back.
        #expect(try await iterator.next().map { String(buffer: $0) } == "data: one\n\n")
        secondPart.open()
        #expect(try await iterator.next().map { String(buffer: $0) } == "data: two\n\n")
        #expect(try await iterator.next() == nil)
        #expect(try await iterator.next() == nil, "an ended stream stays ended")
        let next = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(next.status == 200)
        #expect(server.accepted == 1)
    }

    @Test func anAnswerThatAsksToCloseIsNotReused() async throws {
        let server = try await ScriptedHTTPServer { _, _ in
            [.send(ScriptedHTTPServer.answer("{}", headers: "Connection: close\r\n")), .close]
        }
        defer { server.stop() }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        for _ in 0..<2 {
            let response = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
            #expect(response.status == 200)
        }
        #expect(server.accepted == 2)
    }

    @Test func aBodyWithoutLengthEndsWhenTheServerCloses() async throws {
        let server = try await ScriptedHTTPServer { _, _ in
            [.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"until\":"), .send("\"close\"}"), .close]
        }
        defer { server.stop() }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        let response = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        guard case .complete(let body) = response.body else {
            Issue.record("complete")
            return
        }
        #expect(String(buffer: body) == "{\"until\":\"close\"}")
        let again = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(again.status == 200)
        #expect(server.accepted == 2, "a connection whose answer ended with its close is not reused")
    }

    @Test func anOversizedAnswerFailsAndTheClientGoesOn() async throws {
        let server = try await ScriptedHTTPServer { _, index in
            [.send(ScriptedHTTPServer.answer(index == 0 ? String(repeating: "a", count: 5000) : "{}"))]
        }
        defer { server.stop() }
        let client = PlainHTTPClient(maxBodyBytes: 4096)
        defer { Task { await client.shutdown() } }
        await #expect {
            try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        } throws: { error in
            "\(error)".contains("larger than 4096 bytes")
        }
        let next = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(next.status == 200)
        #expect(server.accepted == 2, "the connection with the oversized answer was closed")
    }

    static let notHTTP = [
        "not HTTP": "garbage\r\n\r\n",
        "negative length": "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
        "two lengths": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "bad chunk size": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "100 kB header": "HTTP/1.1 200 OK\r\nX-" + String(repeating: "h", count: 100_000) + ": 1\r\n\r\n",
    ]

    @Test(arguments: notHTTP.keys.sorted())
    func anAnswerThatIsNotHTTPFailsClearly(_ name: String) async throws {
        let reply = try #require(Self.notHTTP[name])
        let server = try await ScriptedHTTPServer { _, index in
            [.send(index == 0 ? reply : ScriptedHTTPServer.answer("{}"))]
        }
        defer { server.stop() }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        await #expect {
            try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        } throws: { error in
            "\(error)".contains("the HTTP exchange with the upstream failed") || "\(error)".contains("closed")
        }
        let next = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(next.status == 200, "the client goes on with a new connection")
    }

    @Test func aHeaderTheEncoderRefusesFailsTheRequestInsteadOfHangingIt() async throws {
        let server = try await ScriptedHTTPServer { _, _ in [.send(ScriptedHTTPServer.answer("{}"))] }
        defer { server.stop() }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        await #expect {
            try await client.execute(
                .POST, server.target, headers: [(name: "Mcp-Session-Id", value: "abc\r\nX-Injected: 1")], body: ByteBuffer(string: "{}"))
        } throws: { error in
            "\(error)".contains("invalid character in header") || "\(error)".contains("cannot send the request")
        }
        #expect(server.requests.isEmpty, "nothing reached the server")
        let next = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(next.status == 200)
    }

    @Test func requestsBeyondTheConnectionLimitWaitTheirTurnOnTheSameConnections() async throws {
        let held = Gate()
        let server = try await ScriptedHTTPServer { _, index in
            index < 2
                ? [.waitFor(held), .send(ScriptedHTTPServer.answer("{\"n\":\(index)}"))] : [.send(ScriptedHTTPServer.answer("{\"n\":\(index)}"))]
        }
        defer {
            held.open()
            server.stop()
        }
        let client = PlainHTTPClient(maxConnectionsPerTarget: 2)
        defer { Task { await client.shutdown() } }
        let target = server.target
        let calls = (0..<5).map { _ in Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}")) } }
        try await eventually { server.requests.count == 2 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.accepted == 2, "two connections, the limit")
        #expect(server.requests.count == 2, "the other three wait for a connection")
        held.open()
        for call in calls { #expect(try await call.value.status == 200) }
        #expect(server.requests.count == 5)
        #expect(server.accepted == 2, "the waiting requests went on the same two connections")
    }

    @Test func eachEventLoopGetsItsOwnConnectionAndReusesIt() async throws {
        let server = try await ScriptedHTTPServer { _, index in [.send(ScriptedHTTPServer.answer("{\"n\":\(index)}"))] }
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let client = PlainHTTPClient(group: group)
        let target = server.target
        /// A request made by a task running on `loop`, as the gateway's handlers run on their connection's loop.
        func call(on loop: any EventLoop) async throws -> Int {
            try await withTaskExecutorPreference(LoopExecutor(loop)) {
                #expect(loop.inEventLoop)
                return try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}")).status
            }
        }
        #expect(try await call(on: loops[0]) == 200)
        #expect(client.openConnections == 1)
        // Loop 0's connection is idle, but a request from loop 1 opens one on its own loop instead of borrowing it.
        #expect(try await call(on: loops[1]) == 200)
        #expect(client.openConnections == 2)
        for loop in [loops[0], loops[1], loops[1], loops[0]] { #expect(try await call(on: loop) == 200) }
        #expect(server.accepted == 2, "one connection per loop, each reused")
        #expect(server.requests.count == 6)
        // A caller on no loop of the client's takes whichever connection is idle.
        #expect(try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}")).status == 200)
        #expect(server.accepted == 2)
        await client.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func aCallerOnAnotherLoopBorrowsAnIdleConnectionAtTheLimit() async throws {
        let server = try await ScriptedHTTPServer { _, index in [.send(ScriptedHTTPServer.answer("{\"n\":\(index)}"))] }
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let client = PlainHTTPClient(group: group, maxConnectionsPerTarget: 1)
        let target = server.target
        for loop in [loops[0], loops[1], loops[0]] {
            let status = try await withTaskExecutorPreference(LoopExecutor(loop)) {
                try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}")).status
            }
            #expect(status == 200)
        }
        #expect(server.accepted == 1, "at the limit, loop 1 reuses loop 0's idle connection")
        await client.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func aCancelledWaitTakesNoConnectionAndShutdownEndsTheOthers() async throws {
        let held = Gate()
        let server = try await ScriptedHTTPServer { _, index in
            index == 0 ? [.waitFor(held), .send(ScriptedHTTPServer.answer("{}"))] : [.send(ScriptedHTTPServer.answer("{}"))]
        }
        defer {
            held.open()
            server.stop()
        }
        let client = PlainHTTPClient(maxConnectionsPerTarget: 1)
        let target = server.target
        let first = Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}")) }
        try await eventually { server.requests.count == 1 }
        let cancelled = Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}")) }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        await #expect { try await cancelled.value } throws: { ($0 as? PlainHTTPClient.NotSent)?.cause is CancellationError }
        held.open()
        #expect(try await first.value.status == 200)
        #expect(try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}")).status == 200)
        #expect(server.accepted == 1, "the cancelled wait left the one connection to the others")

        let heldAgain = Gate()
        let slow = try await ScriptedHTTPServer { _, _ in [.waitFor(heldAgain)] }
        defer {
            heldAgain.open()
            slow.stop()
        }
        let busy = Task { try await client.execute(.POST, slow.target, headers: [], body: ByteBuffer(string: "{}")) }
        try await eventually { slow.requests.count == 1 }
        let waiting = Task { try await client.execute(.POST, slow.target, headers: [], body: ByteBuffer(string: "{}")) }
        try await Task.sleep(for: .milliseconds(50))
        await client.shutdown()
        await #expect { try await waiting.value } throws: { "\($0)".contains("shut down") }
        await #expect(throws: (any Error).self) { try await busy.value }
    }

    @Test func aConnectionTheServerClosesWhileIdleIsNotReused() async throws {
        let server = try await ScriptedHTTPServer { _, _ in
            [.send(ScriptedHTTPServer.answer("{}")), .close]
        }
        defer { server.stop() }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        _ = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        try await eventually { client.openConnections == 0 }
        let next = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(next.status == 200)
        #expect(server.accepted == 2)
    }

    @Test func anIdleConnectionIsKeptOnlyForTheIdleTimeout() async throws {
        let server = try await ScriptedHTTPServer { _, _ in [.send(ScriptedHTTPServer.answer("{}"))] }
        defer { server.stop() }
        let client = PlainHTTPClient(idleTimeout: .milliseconds(50))
        defer { Task { await client.shutdown() } }
        _ = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        try await Task.sleep(for: .milliseconds(120))
        _ = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(server.accepted == 2)
        // The first was closed, not reused (the second, idle once answered, may be swept as well by the time we look).
        try await eventually { server.closed >= 1 }
    }

    @Test func anIdleConnectionNobodyAsksForAgainIsClosedAfterTheIdleTimeout() async throws {
        let server = try await ScriptedHTTPServer { _, _ in [.send(ScriptedHTTPServer.answer("{}"))] }
        defer { server.stop() }
        let client = PlainHTTPClient(idleTimeout: .milliseconds(200))
        defer { Task { await client.shutdown() } }
        _ = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(client.openConnections == 1)
        // No request follows: the sweep closes it, within one and a half idle timeouts.
        try await eventually { client.openConnections == 0 }
        try await eventually { server.closed == 1 }
        let next = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        #expect(next.status == 200)
        #expect(server.accepted == 2)
    }

    /// A connection in use is never swept, however long its answer takes.
    @Test func theSweepLeavesAConnectionInUseAlone() async throws {
        let release = Gate()
        let server = try await ScriptedHTTPServer { _, index in
            index == 0 ? [.send(ScriptedHTTPServer.answer("{}"))] : [.waitFor(release), .send(ScriptedHTTPServer.answer("{}"))]
        }
        defer { server.stop() }
        let client = PlainHTTPClient(idleTimeout: .milliseconds(50))
        defer { Task { await client.shutdown() } }
        _ = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        try await eventually { client.openConnections == 0 }
        async let slow = client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        try await Task.sleep(for: .milliseconds(300))
        // Checked while the second is still in use: once answered it is idle too, and swept 50 ms later.
        #expect(server.closed == 1, "only the first, idle connection was swept, not the one in use")
        release.open()
        #expect(try await slow.status == 200)
    }

    @Test func cancellingAWaitingRequestClosesItsConnection() async throws {
        let never = Gate()
        let server = try await ScriptedHTTPServer { _, _ in [.waitFor(never)] }
        defer {
            never.open()
            server.stop()
        }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        let target = server.target
        let call = Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}")) }
        try await eventually { server.requests.count == 1 }
        call.cancel()
        let result = await call.result
        #expect(throws: (any Error).self) { try result.get() }
        try await eventually { server.closed == 1 }
        #expect(client.openConnections == 0)
    }

    @Test func droppingAnEventStreamBeforeItsEndClosesItsConnection() async throws {
        let never = Gate()
        let server = try await ScriptedHTTPServer { _, _ in
            [
                .send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"),
                .send(ScriptedHTTPServer.chunk("data: one\n\n")),
                .waitFor(never),
            ]
        }
        defer {
            never.open()
            server.stop()
        }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        do {
            let response = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
            guard case .stream(let body) = response.body else {
                Issue.record("streamed")
                return
            }
            var iterator = body.makeAsyncIterator()
            _ = try await iterator.next()
        }
        try await eventually { server.closed == 1 }
    }

    @Test func aShutDownClientRefusesRequestsAndClosesItsConnections() async throws {
        let server = try await ScriptedHTTPServer { _, _ in [.send(ScriptedHTTPServer.answer("{}"))] }
        defer { server.stop() }
        let client = PlainHTTPClient()
        _ = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        await client.shutdown()
        try await eventually { server.closed == 1 }
        await #expect {
            try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        } throws: { error in
            "\(error)".contains("shut down")
        }
    }

    @Test func aServerThatIsNotThereFailsClearly() async throws {
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        let port = try await ScriptedHTTPServer.unusedPort()
        let target = try #require(PlainHTTPClient.Target(url: "http://127.0.0.1:\(port)/mcp"))
        await #expect {
            try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}"))
        } throws: { error in
            "\(error)".contains("cannot connect to 127.0.0.1:\(port)")
        }
    }

    @Test func targetsAreParsedFromPlainHTTPURLsOnly() throws {
        let plain = try #require(PlainHTTPClient.Target(url: "http://example.test:8080/a/b%20c?x=1&y=2"))
        #expect(plain.host == "example.test" && plain.port == 8080)
        #expect(plain.pathAndQuery == "/a/b%20c?x=1&y=2")
        #expect(plain.authority == "example.test:8080")
        let bare = try #require(PlainHTTPClient.Target(url: "http://example.test"))
        #expect(bare.port == 80 && bare.pathAndQuery == "/" && bare.authority == "example.test")
        let six = try #require(PlainHTTPClient.Target(url: "http://[::1]:9000/mcp"))
        #expect(six.host == "::1" && six.authority == "[::1]:9000")
        for url in ["https://example.test/mcp", "ftp://example.test/", "http:///mcp", "http://user:secret@example.test/", "not a url", ""] {
            #expect(PlainHTTPClient.Target(url: url) == nil, "\(url)")
        }
    }

    /// Waits up to 5 s for `condition`.
    func eventually(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("the condition did not become true within 5 s")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Opens once; every wait before or after returns then.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Runs a task's jobs on one event loop (the way the gateway's handlers run on their connection's loop).
final class LoopExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A TCP server that reads HTTP/1.1 requests (with `Content-Length` bodies) and answers each with scripted steps.
final class ScriptedHTTPServer: Sendable {
    enum Step: Sendable {
        case send(String)
        case waitFor(Gate)
        case close
    }

    struct Request: Sendable {
        var head: String
        var body: [UInt8]
    }

    typealias Script = @Sendable (Request, Int) async -> [Step]

    private let channel: Channel
    private let counts = Mutex<(accepted: Int, closed: Int, requests: [Request])>((0, 0, []))
    let port: Int

    var accepted: Int { counts.withLock { $0.accepted } }
    var closed: Int { counts.withLock { $0.closed } }
    var requests: [Request] { counts.withLock { $0.requests } }
    var target: PlainHTTPClient.Target { PlainHTTPClient.Target(url: "http://127.0.0.1:\(port)/mcp?x=1")! }

    init(script: @escaping Script) async throws {
        let box = Mutex<ScriptedHTTPServer?>(nil)
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    guard let server = box.withLock({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    server.counts.withLock { $0.accepted += 1 }
                    try child.pipeline.syncOperations.addHandler(ConnectionHandler(server: server, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
        box.withLock { $0 = self }
    }

    func stop() { channel.close(promise: nil) }

    static func answer(_ body: String, headers: String = "") -> String {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(headers)\r\n\(body)"
    }

    static func chunk(_ text: String) -> String { "\(String(text.utf8.count, radix: 16))\r\n\(text)\r\n" }

    /// A port nothing listens on (bound, then released).
    static func unusedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    fileprivate func record(_ request: Request) -> Int {
        counts.withLock { counts in
            counts.requests.append(request)
            return counts.requests.count - 1
        }
    }

    fileprivate func noteClosed() { counts.withLock { $0.closed += 1 } }

    private final class ConnectionHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        let server: ScriptedHTTPServer
        let script: Script
        var pending = ByteBuffer()
        /// Each request's steps run after the previous request's.
        var previous: Task<Void, Never>?

        init(server: ScriptedHTTPServer, script: @escaping Script) {
            self.server = server
            self.script = script
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = unwrapInboundIn(data)
            pending.writeBuffer(&chunk)
            while let request = takeRequest() {
                let index = server.record(request)
                let channel = context.channel
                let script = script
                let before = previous
                previous = Task {
                    await before?.value
                    for step in await script(request, index) {
                        switch step {
                        case .send(let text): try? await channel.writeAndFlush(ByteBuffer(string: text))
                        case .waitFor(let gate): await gate.wait()
                        case .close: try? await channel.close()
                        }
                    }
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            server.noteClosed()
            context.fireChannelInactive()
        }

        private func takeRequest() -> Request? {
            let bytes = Array(pending.readableBytesView)
            guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<$0 + 4].elementsEqual("\r\n\r\n".utf8) }) else { return nil }
            let head = String(decoding: bytes[..<(end + 4)], as: UTF8.self)
            let length =
                head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            guard bytes.count >= end + 4 + length else { return nil }
            pending.moveReaderIndex(forwardBy: end + 4 + length)
            pending.discardReadBytes()
            return Request(head: head, body: Array(bytes[(end + 4)..<(end + 4 + length)]))
        }
    }
}
