import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
import TollgateCore

@testable import TollgateMCP

/// Issue 20: nothing is written upstream for a request the gateway gave up, what the relay holds for a slow agent is
/// bounded (per stream and for the process), and each agent has a cap on its `subscriptions/listen` streams.
@Suite struct GivenUpAndBoundedTests {
    typealias Scripted = RelaySessionTests.ScriptedUpstream

    static func message(_ text: String) -> JSONRPCMessage { try! JSONRPCMessage(parsing: Array(text.utf8)) }

    static func waitUntil(_ limit: Duration = .seconds(5), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
    }

    static func all(_ reply: RelaySession.Reply) async -> [String] {
        switch reply {
        case .accepted: return []
        case .immediate(let bytes): return [String(decoding: bytes, as: UTF8.self)]
        case .stream(let stream):
            var all: [String] = []
            for await item in stream { all.append(String(decoding: item, as: UTF8.self)) }
            return all
        }
    }

    // MARK: - Nothing written after the gateway gave up

    /// A Streamable HTTP upstream behind a connection limit of one, which something else holds: the call waits in line,
    /// times out there, and is never written, nor is a cancellation for it sent. On the old code it went out once the
    /// connection was free (after the agent had its -32001), and so did its cancellation.
    @Test func aCallThatTimedOutWhileQueuedBehindTheConnectionLimitIsNeverSent() async throws {
        let server = try await ScriptedHTTPServer { request, _ in
            let body = String(decoding: request.body, as: UTF8.self)
            if body.contains("\"blocker\"") {
                try? await Task.sleep(for: .seconds(2))
                return [.send(ScriptedHTTPServer.answer("{}"))]
            }
            guard let message = try? JSONRPCMessage(parsing: request.body), message.kind == .request, let id = message.id else {
                return [.send("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")]
            }
            let result =
                message.method == "tools/list"
                ? #"{"tools":[{"name":"echo","inputSchema":{}}]}"#
                : #"{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"s","version":"1"}}"#
            return [.send(ScriptedHTTPServer.answer(#"{"jsonrpc":"2.0","id":\#(id),"result":\#(result)}"#))]
        }
        defer { server.stop() }
        let clients = UpstreamHTTPClients(maxConnectionsPerTarget: 1)
        let url = "http://127.0.0.1:\(server.port)/mcp"
        var options = RelaySession.Options()
        options.requestTimeout = .seconds(1)
        let gate = RelaySessionTests.RecordingGate()
        let session = RelaySession(
            identity: SessionIdentity(agent: "a", grant: "g", session: "s1", server: "srv"), gate: gate, options: options,
            connect: {
                try await HTTPUpstreamConnection.connect(
                    HTTPEndpoint(url: url, transport: .streamableHTTP), http: clients, logger: Logger(label: "t"))
            },
            logger: Logger(label: "test"))
        _ = await Self.all(
            await session.receive(
                Self.message(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#)))
        _ = await Self.all(await session.receive(Self.message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
        // Something else holds the one connection for 2 s.
        let target = try #require(PlainHTTPClient.Target(url: url))
        let blocker = Task { try await clients.plain.execute(.POST, target, headers: [], body: ByteBuffer(string: #"{"blocker":1}"#)) }
        try await Self.waitUntil { server.requests.contains { String(decoding: $0.body, as: UTF8.self).contains("blocker") } }
        let started = ContinuousClock.now
        let answers = await Self.all(
            await session.receive(
                Self.message(#"{"jsonrpc":"2.0","id":"queued","method":"tools/call","params":{"name":"echo","arguments":{"text":"never"}}}"#)))
        let waited = ContinuousClock.now - started
        #expect(answers.count == 1 && answers[0].contains("-32001"), "\(answers)")
        #expect(waited < .seconds(2), "the agent hears within its 1 s limit, not when the connection comes free: \(waited)")
        _ = try await blocker.value
        // The connection is free now: give a queued request time to go out, if it were still going to.
        try await Task.sleep(for: .milliseconds(700))
        let bodies = server.requests.map { String(decoding: $0.body, as: UTF8.self) }
        #expect(!bodies.contains { $0.contains("never") }, "the call given up in line is never written: \(bodies)")
        #expect(!bodies.contains { $0.contains("notifications/cancelled") }, "nor is a cancellation of a call that never left: \(bodies)")
        #expect(gate.completed.withLock { $0 } == [.timedOut])
        await session.close()
        await clients.shutdown()
    }

    /// `upstream_timeout` counts from forwarding, the upstream's start included: a request whose time runs out while a
    /// slow upstream starts is answered -32001 and never sent to it.
    @Test func aRequestWhoseTimeRunsOutWhileTheUpstreamStartsIsAnsweredAndNeverSent() async throws {
        let connections = RelaySessionTests.Connections()
        var options = RelaySession.Options()
        options.requestTimeout = .milliseconds(300)
        let session = RelaySession(
            identity: SessionIdentity(agent: "a", grant: "g", session: "s1", server: "srv"), gate: RelaySessionTests.RecordingGate(),
            options: options,
            connect: {
                try await Task.sleep(for: .seconds(4))
                let upstream = Scripted(respond: RelaySessionTests.server)
                connections.append(upstream)
                return upstream
            }, logger: Logger(label: "test"))
        let started = ContinuousClock.now
        let answers = await Self.all(
            await session.receive(
                Self.message(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#)))
        #expect(answers.count == 1 && answers[0].contains("-32001") && answers[0].contains("was not ready within"), "\(answers)")
        // Answered at its time-out, before the upstream is ready (4 s): generous for a loaded machine, and still
        // impossible for a relay that waits for the start.
        #expect(ContinuousClock.now - started < .seconds(3.5))
        // Once the upstream is up, the request must not go out late.
        let upBy = ContinuousClock.now + .seconds(20)
        while connections.all.isEmpty, ContinuousClock.now < upBy { try await Task.sleep(for: .milliseconds(50)) }
        try #require(!connections.all.isEmpty, "the upstream started")
        try await Task.sleep(for: .milliseconds(300))
        #expect(connections.sent(0).isEmpty, "nothing is sent once the request's time is up: \(connections.sent(0))")
        await session.close()
    }

    /// A call answered with an event stream that it then never ends, given up at its time-out: the stream's
    /// connection is closed (before, it stayed open, one of the 64, until the upstream ended it).
    @Test func anEventStreamAnswerOfACallGivenUpIsClosed() async throws {
        let never = Gate()
        let server = try await ScriptedHTTPServer { request, _ in
            guard let message = try? JSONRPCMessage(parsing: request.body), message.kind == .request, let id = message.id else {
                return [.send("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")]
            }
            switch message.method {
            case "tools/call":
                return [
                    .send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"),
                    .send(ScriptedHTTPServer.chunk(": started\n\n")), .waitFor(never),
                ]
            case "tools/list":
                return [.send(ScriptedHTTPServer.answer(#"{"jsonrpc":"2.0","id":\#(id),"result":{"tools":[{"name":"echo","inputSchema":{}}]}}"#))]
            default:
                return [
                    .send(ScriptedHTTPServer.answer(#"{"jsonrpc":"2.0","id":\#(id),"result":{"protocolVersion":"2025-11-25","capabilities":{}}}"#))
                ]
            }
        }
        defer {
            never.open()
            server.stop()
        }
        let clients = UpstreamHTTPClients()
        let url = "http://127.0.0.1:\(server.port)/mcp"
        var options = RelaySession.Options()
        options.requestTimeout = .milliseconds(500)
        let session = RelaySession(
            identity: SessionIdentity(agent: "a", grant: "g", session: "s1", server: "srv"), gate: RelaySessionTests.RecordingGate(),
            options: options,
            connect: {
                try await HTTPUpstreamConnection.connect(
                    HTTPEndpoint(url: url, transport: .streamableHTTP), http: clients, logger: Logger(label: "t"))
            }, logger: Logger(label: "test"))
        _ = await Self.all(
            await session.receive(
                Self.message(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#)))
        let answers = await Self.all(await session.receive(Self.message(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}"#)))
        #expect(answers.last?.contains("-32001") == true, "\(answers)")
        try await Self.waitUntil(.seconds(2)) { server.closed >= 1 }
        #expect(server.closed >= 1, "the given-up call's event stream is closed")
        await session.close()
        await clients.shutdown()
    }

    /// `notifications/cancelled` waits at the head of the line for a connection, before the calls already waiting.
    @Test func anUrgentRequestGoesBeforeThoseAlreadyWaiting() async throws {
        let held = Gate()
        let server = try await ScriptedHTTPServer { request, index in
            index == 0 ? [.waitFor(held), .send(ScriptedHTTPServer.answer("{}"))] : [.send(ScriptedHTTPServer.answer("{}"))]
        }
        defer {
            held.open()
            server.stop()
        }
        let client = PlainHTTPClient(maxConnectionsPerTarget: 1)
        defer { Task { await client.shutdown() } }
        let target = server.target
        let first = Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "first")) }
        try await Self.waitUntil { server.requests.count == 1 }
        let waiting = (0..<3).map { n in Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "call-\(n)")) } }
        try await Task.sleep(for: .milliseconds(100))
        let urgent = Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "cancel"), urgent: true) }
        try await Task.sleep(for: .milliseconds(100))
        held.open()
        _ = try await first.value
        _ = try await urgent.value
        for call in waiting { _ = try await call.value }
        let order = server.requests.map { String(decoding: $0.body, as: UTF8.self) }
        #expect(order.first == "first" && order.dropFirst().first == "cancel", "\(order)")
    }

    /// A request whose task is cancelled just as a connection comes free for it is not written (nor retried).
    @Test func aRequestCancelledWhileWaitingIsNotWrittenOnceAConnectionIsFree() async throws {
        let held = Gate()
        let server = try await ScriptedHTTPServer { _, index in
            index == 0 ? [.waitFor(held), .send(ScriptedHTTPServer.answer("{}"))] : [.send(ScriptedHTTPServer.answer("{}"))]
        }
        defer { server.stop() }
        let client = PlainHTTPClient(maxConnectionsPerTarget: 1)
        defer { Task { await client.shutdown() } }
        let target = server.target
        let first = Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "first")) }
        try await Self.waitUntil { server.requests.count == 1 }
        let queued = Task { try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "queued")) }
        try await Task.sleep(for: .milliseconds(50))
        queued.cancel()
        held.open()
        _ = try await first.value
        await #expect(throws: PlainHTTPClient.NotSent.self) { _ = try await queued.value }
        try await Task.sleep(for: .milliseconds(200))
        #expect(server.requests.map { String(decoding: $0.body, as: UTF8.self) } == ["first"])
    }

    // MARK: - Bounded buffers

    /// An upstream floods a call's stream with 64 KiB progress notifications that nobody reads: the stream holds its
    /// bound, the rest is dropped and counted, and the answer still arrives, last.
    @Test func aFloodToASlowReaderIsHeldToTheStreamsBound() async throws {
        let budget = BufferBudget(limit: 64 << 20)
        let payload = String(repeating: "x", count: 64 << 10)
        let flood = 400
        let connections = RelaySessionTests.Connections()
        var options = RelaySession.Options()
        options.buffers = budget
        options.replyBufferBytes = 2 << 20
        let session = RelaySession(
            identity: SessionIdentity(agent: "a", grant: "g", session: "s1", server: "srv"), gate: RelaySessionTests.RecordingGate(),
            options: options,
            connect: {
                let upstream = Scripted { message in
                    guard message.method == "tools/call", let id = message.id, let token = message.progressToken else {
                        return RelaySessionTests.server(message)
                    }
                    let progress = (0..<flood).map { n in
                        #"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":\#(token),"progress":\#(n),"message":"\#(payload)"}}"#
                    }
                    return progress + [#"{"jsonrpc":"2.0","id":\#(id),"result":{"content":[{"type":"text","text":"done"}]}}"#]
                }
                connections.append(upstream)
                return upstream
            }, logger: Logger(label: "test"))
        _ = await Self.all(
            await session.receive(
                Self.message(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#)))
        _ = await Self.all(await session.receive(Self.message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
        guard
            case .stream(let replies) = await session.receive(
                Self.message(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":"p"}}}"#))
        else {
            Issue.record("expected a stream")
            return
        }
        // Nobody reads while the upstream floods 25 MiB.
        try await Self.waitUntil { budget.dropped(.streamFull) > 0 && budget.bufferedBytes > 0 }
        try await Task.sleep(for: .milliseconds(300))
        #expect(budget.peakBytes <= (2 << 20) + (64 << 10) + 4096, "the stream holds its 2 MiB bound and one answer: \(budget.peakBytes)")
        var iterator = replies.makeAsyncIterator()
        var read = 0
        var last: (bytes: [UInt8], isAnswer: Bool)?
        while let message = await iterator.nextMessage() {
            read += 1
            last = message
        }
        #expect(last?.isAnswer == true && String(decoding: last!.bytes, as: UTF8.self).contains("done"), "the answer is never dropped")
        #expect(read + budget.dropped(.streamFull) == flood + 1, "each progress message is either read or counted as dropped")
        #expect(budget.bufferedBytes == 0, "everything read is given back")
        await session.close()
    }

    /// Past the process's bound, messages before an answer are dropped, and an answer the process cannot hold is
    /// replaced by a short error with the request's id.
    @Test func pastTheProcessBoundAnAnswerIsReplacedByAnError() async {
        let budget = BufferBudget(limit: 100_000)
        let (held, heldSink) = ReplyStream.make(bound: 1 << 20, budget: budget)
        #expect(heldSink.send(Array(repeating: UInt8(ascii: "x"), count: 90_000)))
        let (replies, sink) = ReplyStream.make(bound: 1 << 20, budget: budget)
        #expect(!sink.send(Array(repeating: UInt8(ascii: "y"), count: 20_000)), "no room in the process")
        sink.answer(Array(#"{"jsonrpc":"2.0","id":"r7","result":{"big":"\#(String(repeating: "z", count: 20_000))"}}"#.utf8))
        var iterator = replies.makeAsyncIterator()
        let answer = await iterator.nextMessage()
        #expect(answer?.isAnswer == true)
        let text = answer.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
        #expect(text.contains(#""id":"r7""#) && text.contains("-32603") && text.contains("max_buffered_bytes"), "\(text)")
        #expect(budget.dropped(.processFull) == 1 && budget.dropped(.answerReplaced) == 1)
        _ = held
        heldSink.finish()
    }

    @Test func aReaderThatGoesAwayGivesItsBytesBack() async throws {
        let budget = BufferBudget()
        let (replies, sink) = ReplyStream.make(bound: 1 << 20, budget: budget)
        for _ in 0..<10 { sink.send(Array(repeating: 1, count: 1000)) }
        #expect(budget.bufferedBytes > 10_000)
        let reader = Task {
            var iterator = replies.makeAsyncIterator()
            _ = await iterator.next()
            try? await Task.sleep(for: .seconds(10))
            return await iterator.next()
        }
        try await Task.sleep(for: .milliseconds(50))
        reader.cancel()
        _ = await reader.value
        #expect(budget.bufferedBytes == 0)
        #expect(!sink.send([1]), "nothing is kept for a reader that has gone")
    }

    /// A stdio upstream that floods its stdout while the relay takes nothing: the reader stops reading at the read-ahead
    /// bound (the child blocks on its full pipe) instead of queueing the flood in memory; it goes on as events are taken.
    @Test func anUpstreamReaderStopsReadingWhileTheRelayIsBehind() async throws {
        let line = #"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"\#(String(repeating: "x", count: 65_000))"}}"#
        let script = "i=0; while [ $i -lt 400 ]; do printf '%s\n' '\(line)'; i=$((i+1)); echo $i > \"$0\"; done"
        let counter = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-flood-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: counter) }
        let upstream = try StdioUpstreamConnection.start(
            StdioUpstream(command: "/bin/sh", arguments: ["-c", script, counter]), logger: Logger(label: "test"))
        func written() -> Int {
            Int((try? String(contentsOfFile: counter, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        }
        try await Task.sleep(for: .milliseconds(1500))
        // 4 MiB of read-ahead and a 64 KiB pipe: about 66 lines of 64 KiB, never the 400 written by a reader that reads on.
        #expect(written() < 120, "the child is held back: \(written()) lines written")
        var taken = 0
        for await event in upstream.events {
            upstream.taken(event)
            if case .message = event { taken += 1 }
            if taken == 400 { break }
        }
        #expect(taken == 400, "every line arrives once the relay takes them")
        await upstream.close()
    }

    // MARK: - The cap on subscriptions/listen

    /// Each agent may have `limit` listen streams open across its sessions; the next is refused at once with a clear
    /// error, and one that ends gives its place back. Another agent is not affected.
    @Test func theListenStreamCapIsPerAgentAcrossSessions() async throws {
        let cap = ListenStreamCap(limit: 2)
        var options = RelaySession.Options()
        options.listenStreams = cap
        func session(_ agent: String, _ id: String) -> RelaySession {
            RelaySession(
                identity: SessionIdentity(agent: agent, grant: "g", session: id, server: "srv"), gate: RelaySessionTests.RecordingGate(),
                options: options,
                connect: {
                    Scripted { message in message.method == "subscriptions/listen" ? [] : RelaySessionTests.server(message) }
                }, logger: Logger(label: "test"))
        }
        let first = session("a", "s1")
        let second = session("a", "s2")
        let other = session("b", "s3")
        let listen = { (id: Int) in Self.message(#"{"jsonrpc":"2.0","id":\#(id),"method":"subscriptions/listen","params":{"notifications":{}}}"#) }
        var one: ReplyStream?
        if case .stream(let stream) = await first.receive(listen(1)) { one = stream }
        guard one != nil, case .stream = await second.receive(listen(2)) else {
            Issue.record("the first two are accepted")
            return
        }
        #expect(cap.openStreams(of: "a") == 2)
        let refused = await Self.all(await second.receive(listen(3)))
        #expect(refused.count == 1 && refused[0].contains("-32600") && refused[0].contains("max_listen_streams_per_agent"), "\(refused)")
        guard case .stream = await other.receive(listen(4)) else {
            Issue.record("another agent has its own cap")
            return
        }
        // The agent gives the first up: its place comes back once both ends of its stream are gone.
        _ = await first.receive(Self.message(#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#))
        for await _ in one! {}
        one = nil
        try await Self.waitUntil { cap.openStreams(of: "a") == 1 }
        #expect(cap.openStreams(of: "a") == 1)
        guard case .stream = await second.receive(listen(5)) else {
            Issue.record("a place came free")
            return
        }
        for relay in [first, second, other] { await relay.close() }
    }

    /// The same cap holds for an agent's stateless `subscriptions/listen` requests (on the shared upstream).
    @Test func theListenStreamCapHoldsForStatelessRequests() async throws {
        let cap = ListenStreamCap(limit: 1)
        var options = RelaySession.Options()
        options.listenStreams = cap
        let relay = StatelessRelay(
            server: "srv", gate: RelaySessionTests.RecordingGate(), options: options,
            connect: { Scripted { message in message.method == "subscriptions/listen" ? [] : RelaySessionTests.server(message) } },
            logger: Logger(label: "test"))
        let identity = SessionIdentity(agent: "a", grant: "g", session: "stateless:a", server: "srv")
        let listen = Self.message(
            #"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#
        )
        guard case .stream = await relay.receive(listen, identity: identity).reply else {
            Issue.record("the first is accepted")
            return
        }
        let refused = await Self.all(await relay.receive(listen, identity: identity).reply)
        #expect(refused.count == 1 && refused[0].contains("max_listen_streams_per_agent"), "\(refused)")
        await relay.close()
    }
}
