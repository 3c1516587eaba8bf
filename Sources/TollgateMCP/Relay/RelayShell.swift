import Foundation
import Logging
import Synchronization
import TollgateCore
import Tracing

/// What became of a request the relay tried to send.
enum Forwarding {
    /// Sent, or answered with why it could not be.
    case sent
    /// Given up by the agent (or the relay's end) before it was sent; a call would end with this outcome.
    case givenUp(ToolCallOutcome)
}

/// What a relay's shell holds beside its state machine: the tasks and the timer that carry its actions out.
struct RelayShellState {
    var timer = DeadlineTimer()
    /// `tools/call` requests being decided (perhaps held for approval) before they go upstream, by key.
    var deciding: [JSONRPCID: Task<Void, Never>] = [:]
    /// Requests being written upstream, by key: a request given up meanwhile has its sending cancelled, so one still
    /// waiting its turn (behind the HTTP connection limit, or a child's full pipe) is never written. Each ends with the
    /// failure to send, if any.
    var sending: [JSONRPCID: Task<UpstreamError?, Never>] = [:]
    /// The upstream's start under way, which requests that need it wait for.
    var starting: Task<any UpstreamConnection, any Error>?
    /// The gateway's own listing of the upstream's tools under way, which calls that need it wait for together.
    var catalogLoad: Task<ToolCatalog, Never>?
    var counter = 0
    /// Whether the relay has ended (a session the agent deleted).
    var closed = false
}

/// The shell of a relay: an actor that carries out what its ``RelayStateMachine`` decides, and does the I/O (the
/// upstream connection, the gate, the timer). ``RelaySession`` and ``StatelessRelay`` are the two; everything they
/// share is here, once: starting and reading the upstream, the one decision path of a `tools/call`, sending, the
/// deadlines, the gateway's own `tools/list`.
protocol RelayShell: Actor {
    var machine: RelayStateMachine<ReplySink, any UpstreamConnection> { get set }
    var shell: RelayShellState { get set }
    var gate: any ToolCallGate { get }
    var connect: @Sendable () async throws -> any UpstreamConnection { get }
    var options: RelaySession.Options { get }
    var logger: Logger { get }
    var serverName: String { get }
    /// Sends a message on the agent's listening stream (session mode); false when that stream is gone.
    func writeToListener(_ bytes: [UInt8]) -> Bool
}

extension RelayShell {
    // MARK: - Carrying out actions

    func perform(_ actions: [RelayRequests<ReplySink>.Action]) async {
        for action in actions { await perform(action) }
    }

    func perform(_ action: RelayRequests<ReplySink>.Action) async {
        switch action {
        case .send(let bytes, let sink):
            sink.send(bytes)
        case .answer(let bytes, let sink, let ticket, let outcome):
            RelaySession.answer(bytes, outcome: outcome, sink: sink, ticket: ticket, gate: gate)
        case .answerToolList(let list, let sink, let firstPage):
            let gate = gate
            let server = serverName
            let presented = await gate.present(listed: list.definitions, server: server, complete: firstPage && list.nextCursor == nil)
            sink.answer(list.bytes(hiding: { gate.isHidden(tool: $0, server: server) }, presenting: presented))
        case .answerInstead(let bytes, let sink, let ticket, let outcome):
            guard let bytes else {
                // Nobody is answered (the agent gave the request up): the outcome is recorded beside the relay.
                sink.finish()
                if let ticket {
                    let gate = gate
                    Task { await gate.complete(ticket, outcome: outcome) }
                }
                return
            }
            // The outcome is in the log before the agent hears of it.
            if let ticket { await gate.complete(ticket, outcome: outcome) }
            sink.answer(bytes)
        case .reply(let message, let sink):
            if let message { sink.answer(message.bytes) } else { sink.finish() }
        case .toListener(let bytes):
            if !writeToListener(bytes) {
                machine.requests.listenerClosed()
                await perform(machine.requests.agentMessage(bytes))
            }
        case .cancelUpstream(let key, let reason):
            let sending = stopSending(key)
            guard let connection = machine.upstream.connection else { return }
            connection.abandon(key)
            // Beside the relay: the cancellation may wait for a connection (at the head of the line), and the relay's
            // timer and reading must not wait with it. A request that was never written is not cancelled upstream.
            Task {
                if let sending, await sending.value?.notSent == true { return }
                await connection.sendCancellation(of: key, reason: reason)
            }
        case .stopDecision(let key):
            shell.deciding.removeValue(forKey: key)?.cancel()
        case .drop(let why):
            if why == RelayRequests<ReplySink>.backlogFull { options.buffers.count(.backlogFull) }
            if let why { logger.debug("an upstream message was not relayed", metadata: ["why": "\(why)"]) }
        }
    }

    // MARK: - The one path of a request

    /// Decides a `tools/call` accepted under `key` (perhaps holding it for a human's approval, with `progress` reports),
    /// then sends it; runs beside the relay (in `shell.deciding`), so the agent's cancellation stops it. `message` is
    /// what goes upstream; `agentID` the agent's own id, for the answers the gateway writes. A request given up while
    /// it was decided is not sent; `answersWhenGivenUp`: its transport still needs an answer (a JSON response).
    func decideThenForward(
        _ message: JSONRPCMessage, key: JSONRPCID, agentID: JSONRPCID, identity: SessionIdentity, sink: ReplySink,
        progress: (@Sendable (HeldCall.Progress) -> Void)?, resultType: Bool, meta: [UInt8]?, answersWhenGivenUp: Bool
    ) async {
        defer { shell.deciding.removeValue(forKey: key) }
        let catalog = await currentCatalog(meta: meta)
        switch await gate.screen(message, id: agentID, identity: identity, catalog: catalog, resultType: resultType, progress: progress) {
        case .answer(let bytes):
            if machine.requests.answered(key) {
                sink.answer(bytes)
            } else {
                await givenUp(ticket: nil, agentID: agentID, sink: sink, answer: answersWhenGivenUp ? bytes : nil)
            }
        case .forward(var ticket):
            // The upstream call's span, a child of the agent request's (when this process traces): its context goes to
            // an HTTP upstream as `traceparent` (HTTPUpstreamConnection), and the gate ends it with the call's outcome.
            let forwarding: Forwarding
            if CallTracing.isOn {
                let span = Self.upstreamCallSpan(ticket, server: identity.server)
                ticket.span = span
                forwarding = await ServiceContext.withValue(span.context) { await forward(message, key: key, ticket: ticket) }
            } else {
                forwarding = await forward(message, key: key, ticket: ticket)
            }
            if case .givenUp(let outcome) = forwarding {
                let answer = answersWhenGivenUp ? RelaySession.requestCancelled(id: agentID) : nil
                await givenUp(ticket: ticket, outcome: outcome, agentID: agentID, sink: sink, answer: answer)
            }
        }
    }

    /// The span of a forwarded call's trip upstream, with the semantic conventions' attributes.
    static func upstreamCallSpan(_ ticket: ToolCallTicket, server: String) -> any Span {
        let span = startSpan("tools/call \(ticket.tool)", ofKind: .client)
        if span.isRecording {
            span.attributes["rpc.system"] = "jsonrpc"
            span.attributes["rpc.method"] = "tools/call"
            span.attributes["mcp.method.name"] = "tools/call"
            span.attributes["gen_ai.operation.name"] = "execute_tool"
            span.attributes["gen_ai.tool.name"] = ticket.tool
            span.attributes["tollgate.server"] = server
            span.attributes["tollgate.call_id"] = ticket.callID.lowercasedString
        }
        return span
    }

    /// After a decision that the agent's cancellation (or the relay's end) overtook: nothing was sent, and a call that
    /// would have been is recorded with `outcome` (cancelled). The agent gets `answer`, or the session's end when it
    /// was that.
    func givenUp(
        ticket: ToolCallTicket?, outcome: ToolCallOutcome = .cancelled, agentID: JSONRPCID, sink: ReplySink, answer: [UInt8]?
    ) async {
        if let ticket { await gate.complete(ticket, outcome: outcome) }
        if shell.closed {
            sink.answer(RelaySession.terminated(id: agentID))
        } else if let answer {
            sink.answer(answer)
        } else {
            sink.finish()
        }
    }

    /// Sends request `key` (accepted with `machine.requests.open`) upstream, its answers to go to its sink; a failure
    /// to send is answered there. `.givenUp` when the request was given up before it could be sent: then nothing was,
    /// and the caller ends its stream and records `ticket` with the outcome given.
    ///
    /// `upstream_timeout` counts from here: the wait for the upstream's (re)start, its replayed handshake included, is
    /// part of it, and a request whose time ran out meanwhile is answered with the time-out and not sent at all.
    func forward(_ message: JSONRPCMessage, key: JSONRPCID, ticket: ToolCallTicket?) async -> Forwarding {
        let begun = ContinuousClock.now
        let connection: any UpstreamConnection
        switch await liveUpstream(within: machine.requests.limit(of: key)) {
        case .ready(let live):
            connection = live
        case .failed(let error):
            guard let action = machine.requests.notSent(key, error: error) else { return .givenUp(.notSent(error.description)) }
            await perform(withTicket(action, ticket))
            return .sent
        case .timedOut:
            // Answered at its time-out while the start goes on (a later request uses the upstream it brings up).
            guard let action = machine.requests.timedOutBeforeSending(key) else { return .givenUp(.cancelled) }
            await perform(withTicket(action, ticket))
            return .sent
        }
        switch machine.requests.sent(key, ticket: ticket, now: begun) {
        case .gone: return .givenUp(.cancelled)
        case .sent(let deadline?) where deadline <= .now:
            if let action = machine.requests.timedOutBeforeSending(key) { await perform(action) }
            return .sent
        case .sent(let deadline): if let deadline { armTimer(deadline) }
        }
        let sending = Task { () async -> UpstreamError? in
            do throws(UpstreamError) {
                try await connection.send(message)
                return nil
            } catch {
                return error
            }
        }
        shell.sending[key] = sending
        let failure = await sending.value
        if shell.sending[key] == sending { shell.sending[key] = nil }
        if let failure, let action = machine.requests.notSent(key, error: failure) { await perform(action) }
        return .sent
    }

    /// Stops the sending of request `key`, if it is under way: one still waiting for its turn is never written. The
    /// sending task, to learn from its end whether anything left (`notSent`).
    @discardableResult
    func stopSending(_ key: JSONRPCID) -> Task<UpstreamError?, Never>? {
        guard let sending = shell.sending.removeValue(forKey: key) else { return nil }
        sending.cancel()
        return sending
    }

    /// The relay ends: nothing waiting to be sent is sent any more.
    func stopAllSending() {
        for sending in shell.sending.values { sending.cancel() }
        shell.sending.removeAll()
    }

    /// `action` with the call's ticket (which the request had not got yet, as it was never sent).
    private func withTicket(_ action: RelayRequests<ReplySink>.Action, _ ticket: ToolCallTicket?) -> RelayRequests<ReplySink>.Action {
        guard let ticket, case .answerInstead(let bytes, let sink, nil, let outcome) = action else { return action }
        return .answerInstead(bytes, to: sink, ticket: ticket, outcome: outcome)
    }

    // MARK: - The upstream

    /// ``liveUpstream()``, waited for at most `limit` (nil: without a limit): a request must not wait past its
    /// `upstream_timeout` for an upstream that is slow to start. The start itself goes on when the wait ends.
    private func liveUpstream(within limit: Duration?) async -> UpstreamWait {
        if let connection = machine.upstream.connection { return .ready(connection) }
        guard let limit else {
            do throws(UpstreamError) { return .ready(try await liveUpstream()) } catch { return .failed(error) }
        }
        let first = FirstOf<UpstreamWait>()
        return await withCheckedContinuation { continuation in
            first.arm(continuation)
            let timer = Task {
                try? await Task.sleep(for: limit)
                first.resume(.timedOut)
            }
            Task {
                let wait: UpstreamWait
                do throws(UpstreamError) { wait = .ready(try await self.liveUpstream()) } catch { wait = .failed(error) }
                timer.cancel()
                first.resume(wait)
            }
        }
    }

    /// The upstream connection, started (or restarted) if there is none. Requests that arrive while a start is under
    /// way wait for it, so none is sent before the handshake is replayed.
    func liveUpstream() async throws(UpstreamError) -> any UpstreamConnection {
        if let connection = machine.upstream.connection { return connection }
        while true {
            switch machine.upstream.need(now: .now) {
            case .use(let connection):
                return connection
            case .closed:
                throw UpstreamError.notSent("the relay has ended")
            case .wait:
                guard let starting = shell.starting else {
                    // A start is in its last step (it is ready, or failed, at the next turn of the actor).
                    await Task.yield()
                    continue
                }
                do {
                    return try await starting.value
                } catch {
                    throw (error as? UpstreamError) ?? UpstreamError("\(error)")
                }
            case .start(let delay, let replay):
                let task = Task { () async throws -> any UpstreamConnection in try await self.startUpstream(after: delay, replay: replay) }
                shell.starting = task
                defer { shell.starting = nil }
                do {
                    return try await task.value
                } catch {
                    throw (error as? UpstreamError) ?? UpstreamError("\(error)")
                }
            }
        }
    }

    private func startUpstream(after delay: Duration, replay: String?) async throws(UpstreamError) -> any UpstreamConnection {
        if delay > .zero { try? await Task.sleep(for: delay) }
        let connection: any UpstreamConnection
        do {
            connection = try await connect()
        } catch {
            machine.upstream.startFailed()
            throw (error as? UpstreamError) ?? UpstreamError("\(error)")
        }
        let generation = machine.upstream.connected()
        Task { await self.pump(connection, generation: generation) }
        if let replay {
            logger.notice("upstream restarted; replaying initialize")
            // A server's start can take seconds (an interpreter, a cold cache): give the handshake at least 30 s.
            let reply = await internalRequest(
                method: "initialize", params: replay, on: connection, limit: max(options.requestTimeout, .seconds(30)))
            guard let reply, reply.kind == .response else {
                // Never leave a connection that missed its handshake in place: the next request starts another.
                machine.upstream.startFailed()
                await connection.close()
                throw UpstreamError("the restarted upstream server did not accept the session's initialize")
            }
            try await connection.send(RelaySession.initializedNotification)
        }
        guard machine.upstream.ready(connection, generation: generation) else {
            await connection.close()
            throw UpstreamError.notSent("the upstream connection ended while it started")
        }
        return connection
    }

    private func pump(_ connection: any UpstreamConnection, generation: Int) async {
        var handled = 0
        for await event in connection.events {
            // An upstream that floods keeps this loop busy: let the other relays' work run between its messages.
            handled &+= 1
            if handled % 16 == 0 { await Task.yield() }
            switch event {
            case .message(let message):
                await perform(machine.upstreamMessage(message))
            case .related(let message, let request):
                await perform(machine.upstreamMessage(message, relatedTo: request))
            case .garbage(let text):
                logger.warning("upstream wrote something that is not JSON-RPC; skipped", metadata: ["output": "\(text)"])
            case .closed(let reason):
                await perform(machine.upstreamEnded(generation: generation, reason: reason, now: .now))
            }
            connection.taken(event)
        }
    }

    // MARK: - Deadlines

    /// Sets the timer to wake the relay at `deadline` (or earlier).
    func armTimer(_ deadline: ContinuousClock.Instant) {
        shell.timer.arm(at: deadline) { [weak self] in await self?.sweepExpired() }
    }

    /// Answers every request whose deadline has passed, then sets the timer for the next deadline.
    private func sweepExpired() async {
        shell.timer.fired()
        await perform(machine.requests.deadlinesPassed(now: .now))
        if let next = machine.requests.nextDeadline { armTimer(next) }
    }

    // MARK: - The gateway's own requests

    /// The upstream's tool list, for deciding a call: the one the relay knows, or one read now (calls that come
    /// meanwhile wait for the same reading). Never skipped: a call without it is refused. `meta`: the `_meta` to send
    /// with the listing (a stateless request's version and client information).
    func currentCatalog(meta: [UInt8]?) async -> ToolCatalog {
        if let tools = machine.catalog.tools { return .listed(tools) }
        if let load = shell.catalogLoad { return await load.value }
        let load = Task { await self.loadCatalog(meta: meta) }
        shell.catalogLoad = load
        let result = await load.value
        shell.catalogLoad = nil
        return result
    }

    /// Asks the upstream for its whole tool list (every page), within ``ToolCatalog/loadLimit`` per page.
    private func loadCatalog(meta: [UInt8]?) async -> ToolCatalog {
        let connection: any UpstreamConnection
        do {
            connection = try await liveUpstream()
        } catch {
            return .unavailable("the server is unavailable: \(error.description)")
        }
        var tools: [String: ToolDescriptor] = [:]
        var definitions: [(name: String, bytes: [UInt8])] = []
        var cursor: String?
        // The whole list, every page, within `upstream_timeout` (each page within the load limit).
        let until = ContinuousClock.now + options.requestTimeout
        for _ in 0..<ToolCatalog.maxPages {
            var members: [String] = []
            if let meta { members.append(#""_meta":"# + String(decoding: meta, as: UTF8.self)) }
            if let cursor { members.append(#""cursor":"# + JSONRPCWriter.string(cursor)) }
            let limit = min(until - .now, ToolCatalog.loadLimit)
            guard limit > .zero else {
                return .unavailable("the whole tool list did not come within \(options.requestTimeout.components.seconds) s (upstream_timeout)")
            }
            let params = members.isEmpty ? nil : "{" + members.joined(separator: ",") + "}"
            let reply = await internalRequest(method: "tools/list", params: params, on: connection, limit: limit)
            let list: ToolListResponse
            switch ToolCatalog.page(reply, limit: limit) {
            case .success(let page): list = page
            case .failure(let why): return .unavailable(why.description)
            }
            for tool in list.tools { tools[tool.name] = tool }
            definitions += list.definitions
            guard let next = list.nextCursor else {
                machine.catalog.listed(tools)
                gate.observe(listed: definitions, server: serverName, complete: true)
                return .listed(tools)
            }
            cursor = next
        }
        return .unavailable("the list has more than \(ToolCatalog.maxPages) pages")
    }

    /// Sends a request of the gateway's own on `connection`: its answer, or nil when none came within `limit`.
    func internalRequest(method: String, params: String?, on connection: any UpstreamConnection, limit: Duration) async -> JSONRPCMessage? {
        shell.counter += 1
        let key = JSONRPCID(string: "tollgate-\(shell.counter)-\(UUID().uuidString.prefix(8))")
        guard let message = try? JSONRPCMessage(parsing: JSONRPCWriter.request(id: key, method: method, params: params)) else { return nil }
        let (stream, sink) = ReplyStream.make(bound: options.replyBufferBytes, budget: options.buffers)
        guard machine.requests.open(key, .init(sink: sink, asker: .gateway, method: method, limit: limit)),
            case .sent(let deadline) = machine.requests.sent(key, now: .now)
        else { return nil }
        if let deadline { armTimer(deadline) }
        do {
            try await connection.send(message)
        } catch {
            if let action = machine.requests.notSent(key, error: error) { await perform(action) }
        }
        var replies = stream.makeAsyncIterator()
        guard let bytes = await replies.next() else { return nil }
        return try? JSONRPCMessage(parsing: bytes)
    }
}

/// How a request's wait for the upstream ended.
enum UpstreamWait: Sendable {
    case ready(any UpstreamConnection)
    case failed(UpstreamError)
    case timedOut
}

/// A continuation resumed once, with whichever value comes first.
final class FirstOf<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Value, Never>?>(nil)

    func arm(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume(_ value: Value) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}
