import Foundation
import Logging
import TollgateCore

/// The relay for protocol 2026-07-28's stateless requests: no session, every request carries its own version and
/// client information. One upstream connection per server is shared by every agent's requests, so ids are
/// remapped: each request goes upstream under an id of the gateway's own, and its `progressToken` too; the
/// response and progress notifications get the agent's originals back. Nothing else in the bytes changes.
///
/// `server/discover` is forwarded like any request: an upstream that speaks 2026-07-28 answers it and the client
/// goes on statelessly; one that does not answers with an error (or not within five seconds, and then the gateway
/// answers with one), and the client falls back to the `initialize` handshake. The gateway never claims more than
/// the upstream can do.
public actor StatelessRelay {
    private let server: String
    private let gate: any ToolCallGate
    private let connect: @Sendable () async throws -> any UpstreamConnection
    private let options: RelaySession.Options
    private let logger: Logger

    private var upstream: (any UpstreamConnection)?
    private var pending: [JSONRPCID: Pending] = [:]
    private var progress: [JSONRPCID: (request: JSONRPCID, original: [UInt8])] = [:]
    private var catalog: [String: ToolDescriptor]?
    private var catalogLoad: Task<ToolCatalog, Never>?
    private var counter = 0
    private var timer = DeadlineTimer()

    private struct Pending {
        var originalID: [UInt8]
        var sink: ReplySink?
        var internalWaiter: CheckedContinuation<JSONRPCMessage?, Never>?
        var ticket: ToolCallTicket?
        var token: JSONRPCID?
        /// When the gateway answers for the upstream that it did not answer in time, and that time's length.
        var deadline: ContinuousClock.Instant
        var limit: Duration
        var method: String
    }

    public init(
        server: String, gate: any ToolCallGate, options: RelaySession.Options = .init(),
        connect: @escaping @Sendable () async throws -> any UpstreamConnection, logger: Logger
    ) {
        self.server = server
        self.gate = gate
        self.options = options
        self.connect = connect
        var logger = logger
        logger[metadataKey: "server"] = "\(server)"
        self.logger = logger
    }

    /// Handles one stateless message from an agent: the reply, and for a request sent upstream, the id it went under
    /// (for `abandon`). Cancelling the calling task before the request is sent (while a call is held for approval)
    /// sends nothing: the call's outcome is `cancelled`.
    public func receive(_ message: JSONRPCMessage, identity: SessionIdentity) async -> (reply: RelaySession.Reply, upstreamID: JSONRPCID?) {
        var upstreamID: JSONRPCID?
        let reply = await receive(message, identity: identity, sentAs: &upstreamID)
        return (reply, upstreamID)
    }

    /// The agent went away while its request was in flight (a 2026-07-28 client cancels a request by closing its
    /// connection): the upstream is sent `notifications/cancelled`, the call's outcome is `cancelled`, and the request's
    /// stream ends. Nothing happens when the request has been answered already.
    public func abandon(_ upstreamID: JSONRPCID) async {
        guard let entry = pending.removeValue(forKey: upstreamID) else { return }
        finish(entry)
        if let ticket = entry.ticket { await gate.complete(ticket, outcome: .cancelled) }
        await upstream?.sendCancellation(of: upstreamID, reason: "the client disconnected")
    }

    private func receive(_ message: JSONRPCMessage, identity: SessionIdentity, sentAs: inout JSONRPCID?) async -> RelaySession.Reply {
        if let refusal = AgentMethods.refusal(of: message) {
            logger.notice("a message no rule lets through was refused", metadata: ["method": "\(RelaySession.quoted(message.method ?? ""))"])
            return .immediate(refusal)
        }
        guard message.kind == .request, let id = message.id, let method = message.method else {
            // Notifications and responses have no place without a session: accepted and dropped.
            return .accepted
        }
        if AgentMethods.reads.contains(method) {
            var logger = logger
            logger[metadataKey: "agent"] = "\(identity.agent)"
            RelaySession.logRead(message, method: method, logger: logger)
        }
        var ticket: ToolCallTicket?
        if method == "tools/call" {
            let catalog = await currentCatalog(meta: message.paramsRange(of: "_meta").map { Array(message.bytes[$0]) })
            switch await gate.screen(message, id: id, identity: identity, catalog: catalog, resultType: true) {
            case .answer(let bytes): return .immediate(bytes)
            case .forward(let granted): ticket = granted
            }
        }
        let connection: any UpstreamConnection
        do {
            connection = try await liveUpstream()
        } catch {
            if let ticket { await gate.complete(ticket, outcome: .notSent("\(error)")) }
            return .immediate(JSONRPCWriter.error(id: id, code: -32603, message: "The upstream server is unavailable: \(error)"))
        }
        if Task.isCancelled {
            // The agent hung up while the call was decided (held for approval) or the upstream started: nothing is sent.
            if let ticket { await gate.complete(ticket, outcome: .cancelled) }
            return .immediate(RelaySession.requestCancelled(id: id))
        }
        counter += 1
        let upstreamID = JSONRPCID(string: "tg-\(counter)")
        var replacements: [(range: Range<Int>, bytes: [UInt8])] = [(message.idRange!, upstreamID.raw)]
        var token: JSONRPCID?
        if let tokenRange = message.progressTokenRange {
            let gatewayToken = JSONRPCID(string: "tgp-\(counter)")
            replacements.append((tokenRange, gatewayToken.raw))
            progress[gatewayToken] = (upstreamID, Array(message.bytes[tokenRange]))
            token = gatewayToken
        }
        guard let rewritten = try? JSONRPCMessage(parsing: message.replacing(replacements)) else {
            return .immediate(JSONRPCWriter.error(id: id, code: -32603, message: "Internal error: the request could not be relayed"))
        }
        let (stream, sink) = ReplyStream.make()
        // Discovery must be answered quickly: a client waits 10 s before falling back.
        let limit = method == "server/discover" ? min(options.requestTimeout, .seconds(5)) : options.requestTimeout
        pending[upstreamID] = Pending(
            originalID: id.raw, sink: sink, ticket: ticket, token: token, deadline: deadline(limit), limit: limit, method: method)
        do {
            try await connection.send(rewritten)
        } catch {
            if let entry = pending.removeValue(forKey: upstreamID) {
                finish(entry)
                if let ticket { await gate.complete(ticket, outcome: .sendFailed(error)) }
            }
            return .immediate(JSONRPCWriter.error(id: id, code: -32603, message: "The upstream server is unavailable: \(error.description)"))
        }
        sentAs = upstreamID
        return .stream(stream)
    }

    // MARK: - The upstream

    private func liveUpstream() async throws -> any UpstreamConnection {
        if let upstream { return upstream }
        let connection = try await connect()
        if let upstream {
            await connection.close()
            return upstream
        }
        upstream = connection
        Task { await self.pump(connection) }
        return connection
    }

    private func pump(_ connection: any UpstreamConnection) async {
        for await event in connection.events {
            switch event {
            case .message(let message): fromUpstream(message)
            case .garbage(let text): logger.warning("upstream wrote something that is not JSON-RPC; skipped", metadata: ["output": "\(text)"])
            case .closed(let reason): await closed(connection, reason: reason)
            }
        }
    }

    private func closed(_ connection: any UpstreamConnection, reason: String) async {
        guard upstream === connection else { return }
        upstream = nil
        catalog = nil
        for (_, entry) in pending {
            // In the log before the agent hears of the failure. The quota is kept: the call may have run.
            if let ticket = entry.ticket { await gate.complete(ticket, outcome: .transportError(reason)) }
            if let waiter = entry.internalWaiter {
                waiter.resume(returning: nil)
            } else if let id = JSONRPCID(raw: entry.originalID) {
                entry.sink?.answer(JSONRPCWriter.error(id: id, code: -32603, message: "The upstream server stopped: \(reason)"))
            }
            finish(entry)
        }
        pending.removeAll()
        progress.removeAll()
    }

    private func fromUpstream(_ message: JSONRPCMessage) {
        switch message.kind {
        case .response, .error:
            guard let id = message.id, let entry = pending.removeValue(forKey: id), let idRange = message.idRange else { return }
            if let waiter = entry.internalWaiter {
                waiter.resume(returning: message)
                return
            }
            var bytes = message.replacing([(idRange, entry.originalID)])
            if entry.method == "tools/list", let restored = try? JSONRPCMessage(parsing: bytes), let list = ToolListResponse(restored) {
                var known = catalog ?? [:]
                for tool in list.tools { known[tool.name] = tool }
                catalog = known
                let gate = gate
                let server = server
                bytes = list.bytes { gate.isHidden(tool: $0, server: server) }
            }
            finish(entry, closing: false)
            RelaySession.answer(bytes, response: message, sink: entry.sink, ticket: entry.ticket, gate: gate)
        case .notification:
            guard message.method == "notifications/progress", let token = message.paramsID("progressToken"), let route = progress[token],
                let sink = pending[route.request]?.sink, let range = message.paramsRange(of: "progressToken")
            else {
                if message.method == "notifications/tools/list_changed" { catalog = nil }
                return
            }
            sink.send(message.replacing([(range, route.original)]))
        case .request:
            logger.debug("a server request with no session to carry it; dropped", metadata: ["method": "\(message.method ?? "")"])
        }
    }

    private func finish(_ entry: Pending, closing: Bool = true) {
        if closing { entry.sink?.finish() }
        if let token = entry.token { progress.removeValue(forKey: token) }
    }

    /// The deadline of a request sent now, with the timer set to wake for it.
    private func deadline(_ limit: Duration) -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + limit
        timer.arm(at: deadline) { [weak self] in await self?.sweepExpired() }
        return deadline
    }

    /// Answers every request whose deadline has passed, then sets the timer for the next deadline.
    private func sweepExpired() async {
        timer.fired()
        let now = ContinuousClock.now
        for (id, entry) in pending where entry.deadline <= now { await timedOut(id, limit: entry.limit) }
        if let next = pending.values.lazy.map(\.deadline).min() {
            timer.arm(at: next) { [weak self] in await self?.sweepExpired() }
        }
    }

    private func timedOut(_ id: JSONRPCID, limit: Duration) async {
        guard let entry = pending.removeValue(forKey: id) else { return }
        // The outcome is in the log before the agent hears of it, as for every other way a call ends.
        if let ticket = entry.ticket { await gate.complete(ticket, outcome: .timedOut) }
        if let waiter = entry.internalWaiter {
            waiter.resume(returning: nil)
        } else if let original = JSONRPCID(raw: entry.originalID) {
            let text =
                entry.method == "server/discover"
                ? RelaySession.discoverRefusal(id: original)
                : JSONRPCWriter.error(
                    id: original, code: -32001, message: "Request timed out: the upstream server did not answer within \(limit.components.seconds) s")
            entry.sink?.answer(text)
        }
        finish(entry)
        await upstream?.sendCancellation(of: id, reason: "timed out in the gateway")
    }

    /// The upstream's tool list, for deciding a call: the one known, or one read now (calls that come meanwhile wait
    /// for the same reading). Never skipped: a call without it is refused.
    private func currentCatalog(meta: [UInt8]?) async -> ToolCatalog {
        if let catalog { return .listed(catalog) }
        if let catalogLoad { return await catalogLoad.value }
        let load = Task { await self.loadCatalog(meta: meta) }
        catalogLoad = load
        let result = await load.value
        catalogLoad = nil
        return result
    }

    /// Lists the upstream's tools (every page), sending the agent's own `_meta` (version and client information).
    private func loadCatalog(meta: [UInt8]?) async -> ToolCatalog {
        let connection: any UpstreamConnection
        do {
            connection = try await liveUpstream()
        } catch {
            return .unavailable("the server is unavailable: \(error)")
        }
        var tools: [String: ToolDescriptor] = [:]
        var cursor: String?
        for _ in 0..<ToolCatalog.maxPages {
            var members: [String] = []
            if let meta { members.append(#""_meta":"# + String(decoding: meta, as: UTF8.self)) }
            if let cursor { members.append(#""cursor":"# + JSONRPCWriter.string(cursor)) }
            counter += 1
            let id = JSONRPCID(string: "tg-list-\(counter)")
            guard
                let request = try? JSONRPCMessage(
                    parsing: JSONRPCWriter.request(id: id, method: "tools/list", params: "{" + members.joined(separator: ",") + "}"))
            else { return .unavailable("the request could not be made") }
            let limit = min(options.requestTimeout, ToolCatalog.loadLimit)
            let reply = await withCheckedContinuation { (waiter: CheckedContinuation<JSONRPCMessage?, Never>) in
                pending[id] = Pending(originalID: id.raw, internalWaiter: waiter, deadline: deadline(limit), limit: limit, method: "tools/list")
                Task {
                    do {
                        try await connection.send(request)
                    } catch {
                        self.internalFailed(id)
                    }
                }
            }
            let list: ToolListResponse
            switch ToolCatalog.page(reply, limit: limit) {
            case .success(let page): list = page
            case .failure(let why): return .unavailable(why.description)
            }
            for tool in list.tools { tools[tool.name] = tool }
            guard let next = list.nextCursor else {
                catalog = tools
                return .listed(tools)
            }
            cursor = next
        }
        return .unavailable("the list has more than \(ToolCatalog.maxPages) pages")
    }

    private func internalFailed(_ id: JSONRPCID) {
        guard let entry = pending.removeValue(forKey: id) else { return }
        entry.internalWaiter?.resume(returning: nil)
    }

    /// Ends the shared upstream connection.
    public func close() async {
        for (_, entry) in pending {
            entry.internalWaiter?.resume(returning: nil)
            finish(entry)
        }
        pending.removeAll()
        timer.cancel()
        await upstream?.close()
        upstream = nil
    }
}
