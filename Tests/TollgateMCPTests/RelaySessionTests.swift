import Foundation
import Logging
import Synchronization
import Testing
import TollgateCore

@testable import TollgateMCP

/// The relay session's routing and decisions, with an in-memory upstream and gate (unit tests of this one part; the
/// real peers are in TollgateServerTests).
@Suite struct RelaySessionTests {
    /// An upstream that answers with a script: `respond` gets each message sent and returns replies to emit.
    final class ScriptedUpstream: UpstreamConnection, Sendable {
        let events: AsyncStream<UpstreamEvent>
        let continuation: AsyncStream<UpstreamEvent>.Continuation
        let sent = Mutex<[String]>([])
        let respond: @Sendable (JSONRPCMessage) -> [String]

        init(respond: @escaping @Sendable (JSONRPCMessage) -> [String]) {
            (events, continuation) = AsyncStream.makeStream(of: UpstreamEvent.self)
            self.respond = respond
        }

        func send(_ message: JSONRPCMessage) async throws(UpstreamError) {
            sent.withLock { $0.append(String(decoding: message.bytes, as: UTF8.self)) }
            for reply in respond(message) { emit(reply) }
        }

        func emit(_ text: String) {
            continuation.yield(.message(try! JSONRPCMessage(parsing: Array(text.utf8))))
        }

        func die() {
            continuation.yield(.closed(reason: "exited with status 3"))
            continuation.finish()
        }

        func close() async { continuation.finish() }
    }

    final class RecordingGate: ToolCallGate, Sendable {
        let hidden: Set<String>
        let refused: Set<String>
        let decided = Mutex<[String]>([])
        let completed = Mutex<[ToolCallOutcome]>([])

        init(hidden: Set<String> = [], refused: Set<String> = []) {
            self.hidden = hidden
            self.refused = refused
        }

        func isHidden(tool: String, server: String) -> Bool { hidden.contains(tool) }

        func decide(_ request: ToolCallRequest) async -> ToolCallVerdict {
            decided.withLock { $0.append(request.tool) }
            if refused.contains(request.tool) { return .refuse(text: "no \(request.tool)", meta: [:]) }
            if hidden.contains(request.tool) { return .unknownTool }
            return .forward(ToolCallTicket(callID: UUID(), identity: request.identity, tool: request.tool, reservations: []))
        }

        func complete(_ ticket: ToolCallTicket, outcome: ToolCallOutcome) async {
            completed.withLock { $0.append(outcome) }
        }
    }

    static let tools =
        #"{"tools":[{"name":"echo","inputSchema":{}},{"name":"secret","inputSchema":{}},{"name":"transfer","inputSchema":{}},{"name":"hang","inputSchema":{}}]}"#

    /// A well-behaved server: initialize, tools/list, echo (with progress when asked), rpc errors for `boom`.
    static func server(_ message: JSONRPCMessage) -> [String] {
        guard message.kind == .request, let id = message.id?.description else { return [] }
        switch message.method {
        case "initialize":
            return [
                #"{"jsonrpc":"2.0","id":\#(id),"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}"#
            ]
        case "tools/list": return [#"{"jsonrpc":"2.0","id":\#(id),"result":\#(tools)}"#]
        case "tools/call":
            let name = message.paramsString("name") ?? ""
            if name == "boom" || name == "transfer" { return [#"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32000,"message":"boom"}}"#] }
            if name == "hang" { return [] }
            var replies: [String] = []
            if let token = message.progressToken {
                replies.append(#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":\#(token),"progress":1}}"#)
            }
            return replies + [#"{"jsonrpc":"2.0","id":\#(id),"result":{"content":[{"type":"text","text":"ok"}]}}"#]
        default: return [#"{"jsonrpc":"2.0","id":\#(id),"result":{}}"#]
        }
    }

    let identity = SessionIdentity(agent: "a", grant: "g", session: "s1", server: "srv")

    /// The upstream connections a session made, in order.
    final class Connections: Sendable {
        private let list = Mutex<[ScriptedUpstream]>([])
        func append(_ upstream: ScriptedUpstream) { list.withLock { $0.append(upstream) } }
        var all: [ScriptedUpstream] { list.withLock { $0 } }
        subscript(index: Int) -> ScriptedUpstream { all[index] }
        func sent(_ index: Int) -> [String] { all.count > index ? all[index].sent.withLock { $0 } : [] }
    }

    func makeSession(gate: RecordingGate, connections: Connections, timeout: Duration = .seconds(5)) -> RelaySession {
        var options = RelaySession.Options()
        options.requestTimeout = timeout
        return RelaySession(
            identity: identity, gate: gate, options: options,
            connect: {
                let upstream = ScriptedUpstream(respond: Self.server)
                connections.append(upstream)
                return upstream
            }, logger: Logger(label: "test"))
    }

    func message(_ text: String) -> JSONRPCMessage { try! JSONRPCMessage(parsing: Array(text.utf8)) }

    func replies(_ reply: RelaySession.Reply) async -> [String] {
        switch reply {
        case .accepted: return []
        case .immediate(let bytes): return [String(decoding: bytes, as: UTF8.self)]
        case .stream(let stream):
            var all: [String] = []
            for await item in stream { all.append(String(decoding: item, as: UTF8.self)) }
            return all
        }
    }

    func start(_ session: RelaySession) async {
        _ = await replies(
            await session.receive(
                message(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#)))
        _ = await session.receive(message(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#))
    }

    @Test func hiddenToolsLeaveTheListAndAreUnknownToCalls() async throws {
        let gate = RecordingGate(hidden: ["secret"])
        let session = makeSession(gate: gate, connections: Connections())
        await start(session)
        let list = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
        #expect(list.count == 1)
        #expect(!list[0].contains("secret") && list[0].contains("echo"))
        let hidden = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"secret"}}"#)))
        #expect(hidden.first?.contains("-32602") == true)
        let unknown = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nope"}}"#)))
        #expect(unknown.first?.contains("-32602") == true)
        #expect(gate.decided.withLock { $0 } == ["secret"], "the hidden call was decided (and so recorded); the unlisted one was not")
    }

    @Test func aHiddenToolAnswersLikeAnUnknownOneEvenWhenTheGateCannotDecide() async throws {
        // A gate that refuses the hidden tool (as the real one does when the database is down, or when its arguments
        // cannot be stored): the agent still gets exactly the unknown tool's answer.
        let gate = RecordingGate(hidden: ["secret"], refused: ["secret"])
        let session = makeSession(gate: gate, connections: Connections())
        await start(session)
        let hidden = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"secret"}}"#)))
        let unknown = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"nope"}}"#)))
        #expect(hidden == unknown.map { $0.replacingOccurrences(of: "nope", with: "secret") }, "\(hidden) \(unknown)")
        #expect(gate.decided.withLock { $0 } == ["secret"])
    }

    @Test func aCallWithoutAnEarlierListIsDecidedOnTheUpstreamsOwnCatalog() async throws {
        let connections = Connections()
        let gate = RecordingGate(refused: ["transfer"])
        let session = makeSession(gate: gate, connections: connections)
        await start(session)
        let refused = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"transfer"}}"#)))
        #expect(refused.first?.contains(#""isError":true"#) == true)
        #expect(refused.first?.contains("no transfer") == true)
        let sent = connections.sent(0)
        #expect(sent.contains { $0.contains(#""method":"tools/list""#) && $0.contains("tollgate-") }, "the session listed tools itself")
        #expect(!sent.contains { $0.contains(#""name":"transfer""#) }, "a refused call never reaches the upstream")
    }

    @Test func progressGoesToTheRequestsStreamAndOutcomesReachTheGate() async throws {
        let gate = RecordingGate()
        let session = makeSession(gate: gate, connections: Connections())
        await start(session)
        _ = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
        let call = await replies(
            await session.receive(message(#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":9}}}"#)))
        #expect(call.count == 2)
        #expect(call[0].contains("notifications/progress"))
        #expect(call[1].contains(#""id":9"#))
        // The outcome is recorded beside the relay, just after the answer.
        for _ in 0..<100 where gate.completed.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(gate.completed.withLock { $0 } == [.success])
    }

    @Test func aDeadUpstreamAnswersWhatWasInFlightAndRestartsWithTheSameInitialize() async throws {
        let connections = Connections()
        let gate = RecordingGate()
        let session = makeSession(gate: gate, connections: connections)
        await start(session)
        _ = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
        guard case .stream(let hanging) = await session.receive(message(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hang"}}"#))
        else {
            Issue.record("expected a stream")
            return
        }
        // A tools/call on a stream is decided beside the session: wait until it is really in flight upstream.
        for _ in 0..<200 where !connections.sent(0).contains(where: { $0.contains("hang") }) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(connections.sent(0).contains { $0.contains("hang") })
        connections[0].die()
        var answers: [String] = []
        for await item in hanging { answers.append(String(decoding: item, as: UTF8.self)) }
        #expect(answers.count == 1 && answers[0].contains("-32603") && answers[0].contains("exited with status 3"))
        #expect(gate.completed.withLock { $0 } == [.transportError("exited with status 3")])

        let after = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)))
        #expect(after.first?.contains(#""result""#) == true)
        let second = connections.sent(1)
        #expect(second.first?.contains(#""method":"initialize""#) == true, "initialize replayed first")
        #expect(second.first?.contains(#""protocolVersion":"2025-11-25""#) == true, "with the agent's own parameters")
        #expect(second.dropFirst().first?.contains("notifications/initialized") == true)
    }

    @Test func cancellationEndsTheRequestAndIsForwarded() async throws {
        let connections = Connections()
        let gate = RecordingGate()
        let session = makeSession(gate: gate, connections: connections)
        await start(session)
        _ = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
        guard
            case .stream(let hanging) = await session.receive(message(#"{"jsonrpc":"2.0","id":"h","method":"tools/call","params":{"name":"hang"}}"#))
        else {
            Issue.record("expected a stream")
            return
        }
        _ = await session.receive(message(#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"h"}}"#))
        var answers = 0
        for await _ in hanging { answers += 1 }
        #expect(answers == 0, "no response after a cancellation")
        #expect(connections.sent(0).last?.contains("notifications/cancelled") == true)
        try await Task.sleep(for: .milliseconds(50))
        #expect(gate.completed.withLock { $0 } == [.cancelled])
    }

    @Test func aRequestThatTheUpstreamNeverAnswersTimesOut() async throws {
        let gate = RecordingGate()
        let connections = Connections()
        let session = makeSession(gate: gate, connections: connections, timeout: .milliseconds(200))
        await start(session)
        _ = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
        let answers = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hang"}}"#)))
        #expect(answers.count == 1 && answers[0].contains("-32001"))
        #expect(gate.completed.withLock { $0 } == [.timedOut], "the outcome is recorded before the agent is answered")
        // The upstream is told after the agent has its answer (a hung upstream must not hold that answer back).
        let deadline = ContinuousClock.now + .seconds(2)
        while connections.sent(0).last?.contains("notifications/cancelled") != true, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(connections.sent(0).last?.contains("notifications/cancelled") == true, "the upstream is told")
    }

    @Test func aDuplicateIDInFlightIsRefused() async throws {
        let session = makeSession(gate: RecordingGate(), connections: Connections())
        await start(session)
        _ = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
        guard case .stream = await session.receive(message(#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hang"}}"#)) else {
            Issue.record("expected a stream")
            return
        }
        let duplicate = await replies(await session.receive(message(#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#)))
        #expect(duplicate.first?.contains("-32600") == true)
        await session.close()
    }

    @Test func serverMessagesWaitForTheListenerAndArriveInOrder() async throws {
        let connections = Connections()
        let session = makeSession(gate: RecordingGate(), connections: connections)
        await start(session)
        connections[0].emit(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"n":1}}"#)
        connections[0].emit(#"{"jsonrpc":"2.0","id":"srv-1","method":"roots/list"}"#)
        try await Task.sleep(for: .milliseconds(50))
        let stream = await session.listen()
        var iterator = stream.makeAsyncIterator()
        #expect(await iterator.next().map { String(decoding: $0, as: UTF8.self) }?.contains(#""n":1"#) == true)
        #expect(await iterator.next().map { String(decoding: $0, as: UTF8.self) }?.contains("roots/list") == true)
        await session.close()
    }

    @Test func aRequestGivenUpWhileTheUpstreamFailsToStartStillEnds() async throws {
        // The agent cancels while the upstream is being started, and the start fails: the request's stream ends (it
        // used to be left open for ever, a transport waiting on it).
        let session = RelaySession(
            identity: identity, gate: RecordingGate(),
            connect: {
                try await Task.sleep(for: .milliseconds(300))
                throw UpstreamError.notSent("cannot start")
            }, logger: Logger(label: "test"))
        let ended = Mutex(false)
        let request = message(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        Task {
            _ = await replies(await session.receive(request))
            ended.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(100))
        _ = await session.receive(message(#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#))
        let deadline = ContinuousClock.now + .seconds(3)
        while !ended.withLock({ $0 }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(ended.withLock { $0 }, "the given-up request's stream ended")
    }
}
