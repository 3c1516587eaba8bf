import Foundation
import Logging
import TollgateCore

/// The relay for protocol 2026-07-28's stateless requests: no session, every request carries its own version and
/// client information. One upstream connection per server is shared by every agent's requests, so ids are
/// remapped: each request goes upstream under an id of the gateway's own, and its `progressToken` too; the
/// response, progress notifications and a `subscriptions/listen` stream's messages get the agent's originals back.
/// Nothing else in the bytes changes. A log message (`notifications/message`) goes to the request that asked for log
/// messages, when exactly one in flight did (``RelayRequests``); the server's own requests and notifications that
/// belong to no request have no session to go to, and are dropped.
///
/// `server/discover` is forwarded like any request: an upstream that speaks 2026-07-28 answers it and the client
/// goes on statelessly; one that does not answers with an error (or not within five seconds, and then the gateway
/// answers with one), and the client falls back to the `initialize` handshake. The gateway never claims more than
/// the upstream can do. A `subscriptions/listen` request has no time limit: its stream lasts until the agent hangs up
/// or the upstream goes away.
///
/// A thin shell (``RelayShell``) over a pure ``RelayStateMachine``, as ``RelaySession`` is.
public actor StatelessRelay: RelayShell {
    let serverName: String
    let gate: any ToolCallGate
    let connect: @Sendable () async throws -> any UpstreamConnection
    let options: RelaySession.Options
    let logger: Logger

    var machine = RelayStateMachine<ReplySink, any UpstreamConnection>(mode: .stateless)
    var shell = RelayShellState()

    public init(
        server: String, gate: any ToolCallGate, options: RelaySession.Options = .init(),
        connect: @escaping @Sendable () async throws -> any UpstreamConnection, logger: Logger
    ) {
        self.serverName = server
        self.gate = gate
        self.options = options
        self.connect = connect
        var logger = logger
        logger[metadataKey: "server"] = "\(server)"
        self.logger = logger
    }

    /// Handles one stateless message from an agent: the reply, and for a request, the id it goes upstream under (for
    /// `abandon`). A `tools/call` is decided beside the relay; `abandon` before it is sent (while it is held for
    /// approval) sends nothing: the call's outcome is `cancelled`.
    public func receive(_ message: JSONRPCMessage, identity: SessionIdentity) async -> (reply: RelaySession.Reply, upstreamID: JSONRPCID?) {
        if let refusal = AgentMethods.refusal(of: message) ?? AgentMethods.statelessRefusal(of: message) {
            logger.notice("a message no rule lets through was refused", metadata: ["method": "\(RelaySession.quoted(message.method ?? ""))"])
            return (.immediate(refusal), nil)
        }
        guard message.kind == .request, let id = message.id, let method = message.method, let idRange = message.idRange else {
            // Notifications and responses have no place without a session: accepted and dropped.
            return (.accepted, nil)
        }
        if AgentMethods.reads.contains(method) {
            var logger = logger
            logger[metadataKey: "agent"] = "\(identity.agent)"
            RelaySession.logRead(message, method: method, logger: logger)
        }
        shell.counter += 1
        let key = JSONRPCID(string: "tg-\(shell.counter)")
        var replacements: [(range: Range<Int>, bytes: [UInt8])] = [(idRange, key.raw)]
        var token: JSONRPCID?
        var agentToken: [UInt8]?
        if let tokenRange = message.progressTokenRange {
            let gatewayToken = JSONRPCID(string: "tgp-\(shell.counter)")
            replacements.append((tokenRange, gatewayToken.raw))
            token = gatewayToken
            agentToken = Array(message.bytes[tokenRange])
        }
        guard let rewritten = try? JSONRPCMessage(parsing: message.replacing(replacements)) else {
            return (.immediate(JSONRPCWriter.error(id: id, code: -32603, message: "Internal error: the request could not be relayed")), nil)
        }
        let limit: Duration? =
            switch method {
            // Discovery must be answered quickly: a client waits 10 s before falling back.
            case "server/discover": min(options.requestTimeout, .seconds(5))
            case "subscriptions/listen": nil
            default: options.requestTimeout
            }
        var place: ListenStreamCap.Place?
        if method == "subscriptions/listen", let cap = options.listenStreams {
            place = cap.take(identity.agent)
            if place == nil { return (.immediate(cap.refusal(id: id)), nil) }
        }
        let (stream, sink) = ReplyStream.make(bound: options.replyBufferBytes, budget: options.buffers, holding: place)
        let request = RelayRequests<ReplySink>.Request(
            sink: sink, asker: .agent(streams: false), method: method, agentID: id.raw, token: token, agentToken: agentToken,
            wantsLogs: message.metaString(RelayRequests<ReplySink>.logLevelKey) != nil, firstPage: message.paramsString("cursor") == nil,
            limit: limit)
        _ = machine.requests.open(key, request)
        if method == "tools/call" {
            let meta = message.paramsRange(of: "_meta").map { Array(message.bytes[$0]) }
            shell.deciding[key] = Task {
                await self.decideThenForward(
                    rewritten, key: key, agentID: id, identity: identity, sink: sink, progress: nil, resultType: true, meta: meta,
                    answersWhenGivenUp: true)
            }
        } else if case .givenUp = await forward(rewritten, key: key, ticket: nil) {
            await givenUp(ticket: nil, agentID: id, sink: sink, answer: RelaySession.requestCancelled(id: id))
        }
        return (.stream(stream), key)
    }

    /// The agent went away while its request was in flight (a 2026-07-28 client cancels a request by closing its
    /// connection): the upstream is sent `notifications/cancelled`, the call's outcome is `cancelled`, and the request's
    /// stream ends. Nothing happens when the request has been answered already.
    public func abandon(_ upstreamID: JSONRPCID) async {
        await perform(machine.requests.cancelled(upstreamID, reason: "the client disconnected"))
    }

    /// Sends the gateway's own `notifications/tools/list_changed` (after a policy reload) to every `subscriptions/listen`
    /// stream whose upstream agreed to carry that notification, stamped with that stream's subscription id.
    public func notifyListeners(_ method: String = "notifications/tools/list_changed") async {
        await perform(machine.requests.gatewayNotification(method))
    }

    func writeToListener(_ bytes: [UInt8]) -> Bool { false }

    /// Ends the shared upstream connection.
    public func close() async {
        let (actions, connection) = machine.close { _ in nil }
        stopAllSending()
        await perform(actions)
        shell.timer.cancel()
        await connection?.close()
    }
}
