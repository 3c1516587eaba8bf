import TollgateCore

/// The requests a relay has in flight and the rules that route what its upstream sends back: a pure state machine (no
/// I/O, no actor, no clock: the time is an input), one `mutating func` per input, each returning what the relay must do.
/// ``RelaySession`` and ``StatelessRelay`` are the shells that carry the actions out.
///
/// A request is kept under its **key**, the id it goes upstream under: the agent's own id in a session (which has its
/// upstream to itself), an id of the gateway's own in the stateless mode (whose upstream every agent shares); then the
/// agent's id (and its progress token) are put back in what returns. `Sink` is where a request's messages go (a
/// ``ReplySink``; tests use any value).
///
/// What the upstream sends is routed so:
/// - a response or error: to the request it answers (the agent's id back in it);
/// - `notifications/progress`: by its token, to the stream of the request that carried that token;
/// - a message carrying `_meta["io.modelcontextprotocol/subscriptionId"]` (2026-07-28's `subscriptions/listen`: the
///   acknowledgement, then `tools/list_changed`, `resources/updated`, ...): to the stream of that listen request, with
///   the agent's id in place of the gateway's;
/// - `notifications/message` (a log message): in a session, to the agent as below; in the stateless mode, to the
///   request on whose own stream it came (a Streamable HTTP upstream's event stream for that POST: never another,
///   even once that one is answered), else to the one
///   request in flight that asked for log messages (`_meta["io.modelcontextprotocol/logLevel"]`), since a 2026-07-28
///   server sends them only while answering the request they belong to, and stdio says no more. When no request, or
///   more than one, asked for them, nobody can tell whose it is, and it is dropped: never sent to a request it may not
///   belong to;
/// - anything else (the server's own requests, other notifications): in a session, to the agent's listening stream,
///   or while none is open to a request's open event stream, or a small backlog for the next listening stream; in the
///   stateless mode there is no session to carry it, and it is dropped.
///
/// ```swift
/// var requests = RelayRequests<ReplySink>(mode: .stateless)
/// _ = requests.open(key, Request(sink: sink, method: "tools/call", agentID: id.raw))   // deciding
/// let deadline = requests.sent(key, ticket: ticket, now: .now)                       // sent upstream
/// switch requests.upstreamMessage(message) { case .answer(let bytes, let sink, ...): ... }
/// ```
struct RelayRequests<Sink> {
    /// Whether the relay is one agent's session or the stateless mode's shared upstream.
    enum Mode: Equatable {
        /// Ids unchanged; messages nobody asked for go to the agent's listening stream (or a backlog of `backlogLimit`
        /// messages and `backlogBytes` bytes at most, the oldest dropped past either).
        case session(backlogLimit: Int, backlogBytes: Int = 1 << 20)
        /// Ids remapped; messages that belong to no request are dropped.
        case stateless
    }

    /// Who waits for a request's answer.
    enum Asker: Equatable {
        /// The agent. `streams`: every message on its sink reaches it (an SSE response), so server messages may travel
        /// there.
        case agent(streams: Bool)
        /// The gateway itself (its own `tools/list`, a replayed `initialize`): it gets the answer as it came, or none.
        case gateway
    }

    /// One request, from the moment it is accepted (while a `tools/call` is decided) until it is answered or given up.
    struct Request {
        var sink: Sink
        var asker: Asker = .agent(streams: true)
        var method: String
        /// The agent's id as it wrote it, when the request goes upstream under another (stateless mode).
        var agentID: [UInt8]?
        /// The progress token as it goes upstream, and the agent's own when that is another (stateless mode).
        var token: JSONRPCID?
        var agentToken: [UInt8]?
        /// Whether the agent asked this request's log messages (`_meta["io.modelcontextprotocol/logLevel"]`).
        var wantsLogs = false
        /// A `tools/list` without a cursor: its answer replaces the catalog rather than adding to it.
        var firstPage = true
        /// How long the upstream has to answer; nil: no limit (a `subscriptions/listen` stream, which lives until the
        /// agent hangs up or the upstream goes away).
        var limit: Duration?
        var ticket: ToolCallTicket?
        var phase = Phase.deciding
        /// For a `subscriptions/listen` request: its subscription.
        var subscription: Subscription?

        enum Phase: Equatable {
            /// Accepted; nothing sent yet (a `tools/call` being decided, perhaps held for approval).
            case deciding
            /// Sent upstream; answered by the gateway when `deadline` passes (nil: never).
            case sent(deadline: ContinuousClock.Instant?)
        }

        /// What a `subscriptions/listen` request's upstream has acknowledged.
        struct Subscription: Equatable {
            var acknowledged = false
            /// Whether the upstream agreed to send `notifications/tools/list_changed` on it (the gateway then sends its
            /// own there too, after a policy reload).
            var toolsListChanged = false
        }

        init(
            sink: Sink, asker: Asker = .agent(streams: true), method: String, agentID: [UInt8]? = nil, token: JSONRPCID? = nil,
            agentToken: [UInt8]? = nil, wantsLogs: Bool = false, firstPage: Bool = true, limit: Duration? = nil
        ) {
            self.sink = sink
            self.asker = asker
            self.method = method
            self.agentID = agentID
            self.token = token
            self.agentToken = agentToken
            self.wantsLogs = wantsLogs
            self.firstPage = firstPage
            self.limit = limit
            self.subscription = method == "subscriptions/listen" ? Subscription() : nil
        }

        /// The agent's id, for the answers the gateway writes itself.
        func agentID(key: JSONRPCID) -> JSONRPCID? { agentID.flatMap { JSONRPCID(raw: $0) } ?? key }
    }

    /// What the relay does about one input.
    enum Action {
        /// Send a message on a request's stream, before its answer.
        case send([UInt8], to: Sink)
        /// Answer an agent's request with the upstream's response; its stream ends. A forwarded call's `outcome` is
        /// recorded with its ticket beside the relay (``RelaySession/answer(_:outcome:sink:ticket:gate:)``).
        case answer([UInt8], to: Sink, ticket: ToolCallTicket?, outcome: ToolCallOutcome)
        /// Answer an agent's `tools/list` with this page, hidden tools left out (and the catalog learns it: the first
        /// page replaces it, a later one adds to it).
        case answerToolList(ToolListResponse, to: Sink, firstPage: Bool)
        /// Answer for the upstream (it stopped, did not answer in time, the session ended): the call's outcome is
        /// recorded first, then the agent gets `bytes` (or, without bytes, the stream just ends).
        case answerInstead([UInt8]?, to: Sink, ticket: ToolCallTicket?, outcome: ToolCallOutcome)
        /// The answer to the gateway's own request (nil: none came).
        case reply(JSONRPCMessage?, to: Sink)
        /// Send a message on the agent's listening stream (session mode).
        case toListener([UInt8])
        /// Tell the upstream that the gateway gave request `key` up (`notifications/cancelled`).
        case cancelUpstream(JSONRPCID, reason: String)
        /// Stop the decision under way for request `key` (the agent gave it up before it was sent).
        case stopDecision(JSONRPCID)
        /// Nothing to send; why, for the debug log (nil: nothing worth a line, such as a message kept in the backlog).
        case drop(String?)
    }

    let mode: Mode
    private(set) var requests: [JSONRPCID: Request] = [:]
    /// The request of each progress token in flight (the token as it went upstream).
    private var progressRoutes: [JSONRPCID: JSONRPCID] = [:]
    /// Session mode: whether the agent's listening stream (HTTP GET) is open, and what waits for the next one.
    private(set) var listening = false
    private(set) var backlog: [[UInt8]] = []
    private var backlogSize = 0
    /// Why a message left the backlog (or never entered it): it was full.
    static var backlogFull: String { "the backlog for the agent's next listening stream was full: a message was dropped" }

    init(mode: Mode) { self.mode = mode }

    static var subscriptionIDKey: String { "io.modelcontextprotocol/subscriptionId" }
    static var logLevelKey: String { "io.modelcontextprotocol/logLevel" }

    var isEmpty: Bool { requests.isEmpty }

    /// The earliest deadline of the requests sent (for the timer).
    var nextDeadline: ContinuousClock.Instant? {
        requests.values.lazy.compactMap { if case .sent(let deadline) = $0.phase { deadline } else { nil } }.min()
    }

    // MARK: - From the agent (or the gateway)

    /// Accepts a request under `key`, before it is sent (a `tools/call` is decided meanwhile). False when a request
    /// under that key is in flight already: the agent reused an id.
    mutating func open(_ key: JSONRPCID, _ request: Request) -> Bool {
        guard requests[key] == nil else { return false }
        requests[key] = request
        return true
    }

    /// The request goes upstream now, with the gate's `ticket` for a `tools/call`. Its deadline (nil: none), or
    /// `.gone` when it was given up (or the relay closed) meanwhile: then nothing is sent.
    mutating func sent(_ key: JSONRPCID, ticket: ToolCallTicket? = nil, now: ContinuousClock.Instant) -> Sending {
        guard var request = requests[key], request.phase == .deciding else { return .gone }
        let deadline = request.limit.map { now + $0 }
        request.phase = .sent(deadline: deadline)
        request.ticket = ticket
        if let token = request.token { progressRoutes[token] = key }
        requests[key] = request
        return .sent(deadline: deadline)
    }

    enum Sending: Equatable {
        case sent(deadline: ContinuousClock.Instant?)
        case gone
    }

    /// How long request `key` has for its answer (nil: no limit, or no such request).
    func limit(of key: JSONRPCID) -> Duration? {
        requests[key]?.limit
    }

    /// The request's time ran out before it could be sent (the upstream's start took it all): it is answered with the
    /// time-out and never sent. Nil when it had been given up already.
    mutating func timedOutBeforeSending(_ key: JSONRPCID) -> Action? {
        guard let request = remove(key) else { return nil }
        if request.asker == .gateway { return .reply(nil, to: request.sink) }
        let seconds = (request.limit ?? .zero).components.seconds
        let why = "the upstream server was not ready within \(seconds) s"
        return .answerInstead(
            JSONRPCWriter.error(id: request.agentID(key: key), code: -32001, message: "Request timed out: \(why)"), to: request.sink,
            ticket: request.ticket, outcome: .notSent(why))
    }

    /// The gate answered the request itself (it was never sent). False when it had been given up meanwhile.
    mutating func answered(_ key: JSONRPCID) -> Bool {
        remove(key) != nil
    }

    /// The request could not be sent (or the upstream could not be started): the agent is told, and a call's outcome
    /// recorded first. Nil when it had been given up already.
    mutating func notSent(_ key: JSONRPCID, error: UpstreamError) -> Action? {
        guard let request = remove(key) else { return nil }
        if request.asker == .gateway { return .reply(nil, to: request.sink) }
        let outcome: ToolCallOutcome = request.phase == .deciding ? .notSent(error.description) : .sendFailed(error)
        let id = request.agentID(key: key)
        return .answerInstead(
            JSONRPCWriter.error(id: id, code: -32603, message: "The upstream server is unavailable: \(error.description)"), to: request.sink,
            ticket: request.ticket, outcome: outcome)
    }

    /// The agent gave request `key` up: with `notifications/cancelled` (which goes upstream as it is, so `reason` is
    /// nil), or by hanging up (`reason`: the upstream is told). A decision under way stops; nothing answers.
    mutating func cancelled(_ key: JSONRPCID, reason: String? = nil) -> [Action] {
        guard let request = remove(key) else { return [] }
        guard case .sent = request.phase else { return [.stopDecision(key)] }
        var actions: [Action] = [.answerInstead(nil, to: request.sink, ticket: request.ticket, outcome: .cancelled)]
        if let reason { actions.append(.cancelUpstream(key, reason: reason)) }
        return actions
    }

    // MARK: - From the upstream

    /// One message from the upstream; `related`: the request on whose own stream it came (a Streamable HTTP upstream's
    /// event stream for a POST), when the transport can tell.
    mutating func upstreamMessage(_ message: JSONRPCMessage, relatedTo related: JSONRPCID? = nil) -> Action {
        switch message.kind {
        case .response, .error:
            return response(message)
        case .notification:
            if message.method == "notifications/progress", let token = message.paramsID("progressToken"), let key = progressRoutes[token],
                let request = requests[key]
            {
                if let original = request.agentToken, let range = message.paramsRange(of: "progressToken") {
                    return .send(message.replacing([(range, original)]), to: request.sink)
                }
                return .send(message.bytes, to: request.sink)
            }
            if let stamped = subscriptionMessage(message) { return stamped }
            if message.method == "notifications/message", mode == .stateless { return logMessage(message, relatedTo: related) }
            return agentMessage(message.bytes)
        case .request:
            return agentMessage(message.bytes)
        }
    }

    private mutating func response(_ message: JSONRPCMessage) -> Action {
        guard let key = message.id, let request = requests[key], case .sent = request.phase else {
            return .drop("a response for no request in flight")
        }
        remove(key)
        if request.asker == .gateway { return .reply(message, to: request.sink) }
        var bytes = message.bytes
        if let original = request.agentID, let range = message.idRange { bytes = message.replacing([(range, original)]) }
        if request.method == "tools/list", message.kind == .response {
            let restored = request.agentID == nil ? message : try? JSONRPCMessage(parsing: bytes)
            if let restored, let list = ToolListResponse(restored) { return .answerToolList(list, to: request.sink, firstPage: request.firstPage) }
        }
        return .answer(bytes, to: request.sink, ticket: request.ticket, outcome: request.ticket == nil ? .success : Self.outcome(of: message))
    }

    /// A message of a `subscriptions/listen` stream (the upstream stamps each with the listen request's id), with the
    /// agent's id in place of the gateway's; nil when the message carries no stamp.
    private mutating func subscriptionMessage(_ message: JSONRPCMessage) -> Action? {
        guard let meta = message.paramsRange(of: "_meta"), let range = try? JSONScanner(message.bytes).member(Self.subscriptionIDKey, of: meta),
            let key = JSONRPCID(raw: Array(message.bytes[range]))
        else { return nil }
        guard var request = requests[key], var subscription = request.subscription, case .sent = request.phase else {
            return .drop("a subscription message for no subscription open")
        }
        if message.method == "notifications/subscriptions/acknowledged" {
            subscription.acknowledged = true
            subscription.toolsListChanged = Self.honours("toolsListChanged", message)
            request.subscription = subscription
            requests[key] = request
        }
        if let original = request.agentID { return .send(message.replacing([(range, original)]), to: request.sink) }
        return .send(message.bytes, to: request.sink)
    }

    /// Whether an acknowledgement's `params.notifications` has `flag: true`.
    private static func honours(_ flag: String, _ message: JSONRPCMessage) -> Bool {
        let scanner = JSONScanner(message.bytes)
        guard let filter = message.paramsRange(of: "notifications"), let value = try? scanner.member(flag, of: filter) else { return false }
        return message.bytes[value].elementsEqual("true".utf8)
    }

    /// Stateless mode: a log message goes to the request on whose stream it came, else to the one request in flight
    /// that asked for log messages, or nowhere.
    private func logMessage(_ message: JSONRPCMessage, relatedTo related: JSONRPCID?) -> Action {
        if let related {
            guard let request = requests[related], request.asker != .gateway, case .sent = request.phase else {
                return .drop("a log message for a request no longer in flight")
            }
            return .send(message.bytes, to: request.sink)
        }
        var owner: Request?
        for request in requests.values where request.wantsLogs {
            guard case .sent = request.phase else { continue }
            guard owner == nil else { return .drop("a log message while several requests asked for them: whose it is cannot be told") }
            owner = request
        }
        guard let owner else { return .drop("a log message no request in flight asked for") }
        return .send(message.bytes, to: owner.sink)
    }

    /// A message for the agent that no request asked for (again, when its listening stream turned out to be gone).
    mutating func agentMessage(_ bytes: [UInt8]) -> Action {
        guard case .session(let backlogLimit, let backlogBytes) = mode else { return .drop("a server message with no session to carry it") }
        if listening { return .toListener(bytes) }
        for request in requests.values where request.asker == .agent(streams: true) {
            if case .sent = request.phase { return .send(bytes, to: request.sink) }
        }
        guard bytes.count <= backlogBytes else { return .drop(Self.backlogFull) }
        var dropped = false
        while !backlog.isEmpty, backlog.count >= backlogLimit || backlogSize + bytes.count > backlogBytes {
            backlogSize -= backlog.removeFirst().count
            dropped = true
        }
        backlog.append(bytes)
        backlogSize += bytes.count
        return .drop(dropped ? Self.backlogFull : nil)
    }

    /// A message of the gateway's own for the agent (`notifications/tools/list_changed` after a policy reload): to every
    /// subscription that carries `method` (stamped with its id), and in a session to the agent as the upstream's would go.
    mutating func gatewayNotification(_ method: String) -> [Action] {
        var actions: [Action] = []
        for (key, request) in requests {
            guard let subscription = request.subscription, subscription.acknowledged,
                method == "notifications/tools/list_changed" && subscription.toolsListChanged,
                let id = request.agentID(key: key)
            else { continue }
            let params = #"{"_meta":{"\#(Self.subscriptionIDKey)":\#(String(decoding: id.raw, as: UTF8.self))}}"#
            actions.append(.send(JSONRPCWriter.notification(method: method, params: params), to: request.sink))
        }
        if case .session = mode { actions.append(agentMessage(JSONRPCWriter.notification(method: method))) }
        return actions
    }

    /// The upstream connection ended: every request sent on it is answered (the gateway's own get no answer), after its
    /// call's outcome is recorded. Requests still being decided stay: they go to the next connection.
    mutating func upstreamClosed(reason: String) -> [Action] {
        var actions: [Action] = []
        for (key, request) in requests {
            guard case .sent = request.phase else { continue }
            remove(key)
            if request.asker == .gateway {
                actions.append(.reply(nil, to: request.sink))
            } else {
                let answer = JSONRPCWriter.error(id: request.agentID(key: key), code: -32603, message: "The upstream server stopped: \(reason)")
                actions.append(.answerInstead(answer, to: request.sink, ticket: request.ticket, outcome: .transportError(reason)))
            }
        }
        return actions
    }

    /// The timer went off at `now`: every request past its deadline is answered for the upstream (and the upstream told).
    mutating func deadlinesPassed(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (key, request) in requests {
            guard case .sent(let deadline?) = request.phase, deadline <= now else { continue }
            remove(key)
            if request.asker == .gateway {
                actions.append(.reply(nil, to: request.sink))
            } else {
                let id = request.agentID(key: key)
                let seconds = (request.limit ?? .zero).components.seconds
                let answer =
                    request.method == "server/discover"
                    ? RelaySession.discoverRefusal(id: id)
                    : JSONRPCWriter.error(id: id, code: -32001, message: "Request timed out: the upstream server did not answer within \(seconds) s")
                actions.append(.answerInstead(answer, to: request.sink, ticket: request.ticket, outcome: .timedOut))
            }
            actions.append(.cancelUpstream(key, reason: "timed out in the gateway"))
        }
        return actions
    }

    /// The relay ends: every request is answered with `answer` (given the agent's id; nil: its stream just ends),
    /// its call recorded as cancelled; decisions under way stop.
    mutating func close(answer: (JSONRPCID?) -> [UInt8]?) -> [Action] {
        var actions: [Action] = []
        for (key, request) in requests {
            remove(key)
            if case .deciding = request.phase {
                actions.append(.stopDecision(key))
            } else if request.asker == .gateway {
                actions.append(.reply(nil, to: request.sink))
            } else {
                actions.append(.answerInstead(answer(request.agentID(key: key)), to: request.sink, ticket: request.ticket, outcome: .cancelled))
            }
        }
        listening = false
        return actions
    }

    // MARK: - The agent's listening stream (session mode)

    /// The agent opened its listening stream: what the backlog kept, to send there first.
    mutating func listenerOpened() -> [[UInt8]] {
        listening = true
        defer {
            backlog.removeAll()
            backlogSize = 0
        }
        return backlog
    }

    /// The agent's listening stream ended (or a message could not be written to it).
    mutating func listenerClosed() {
        listening = false
    }

    // MARK: -

    @discardableResult
    private mutating func remove(_ key: JSONRPCID) -> Request? {
        guard let request = requests.removeValue(forKey: key) else { return nil }
        if let token = request.token, progressRoutes[token] == key { progressRoutes.removeValue(forKey: token) }
        return request
    }

    /// How a forwarded call ended, by the upstream's answer.
    static func outcome(of message: JSONRPCMessage) -> ToolCallOutcome {
        if message.kind == .error { return .rpcError(code: message.errorCode ?? -32603) }
        if let result = message.resultRange, let flag = try? JSONScanner(message.bytes).member("isError", of: result),
            message.bytes[flag].elementsEqual("true".utf8)
        {
            return .toolError
        }
        return .success
    }
}
