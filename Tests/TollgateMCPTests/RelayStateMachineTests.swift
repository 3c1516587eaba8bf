import Foundation
import Testing
import TollgateCore

@testable import TollgateMCP

/// The relay's rules as a pure state machine, without sockets, actors or clocks: each case is a sequence of inputs
/// (an agent's request accepted, sent, the upstream's messages, a deadline, a hang-up, the upstream's end, ...) and the
/// actions each one produces, written as text. Sinks are names (`a`, `b`, ...); a gateway-written error reads
/// `error(<id>,<code>)`; `[outcome]` is what the gate is told about a call.
@Suite struct RelayStateMachineTests {
    // MARK: - The language of the table

    /// How a request is accepted.
    struct Open: Sendable {
        var sink: String
        var method = "tools/call"
        /// Stateless: the agent's own id (the key is the gateway's).
        var agentID: String?
        var token: String?
        var agentToken: String?
        var logs = false
        var streams = true
        var gateway = false
        /// Seconds; nil: no limit.
        var limit: Int? = 10
        var cursor = false
    }

    enum Input: Sendable {
        /// Accept a request under `key` (JSON text of the id).
        case open(String, Open)
        /// Send it at second `at`; `call`: a forwarded tools/call with a ticket.
        case sent(String, at: Int, call: Bool = false)
        /// It could not be sent.
        case notSent(String, error: String)
        /// The gate answered it instead.
        case answered(String)
        case upstream(String)
        /// A message that came on the stream of request `key` (an HTTP upstream's event stream for that POST).
        case upstreamRelated(String, key: String)
        /// The agent's `notifications/cancelled`.
        case cancelled(String)
        /// The agent hung up.
        case hungUp(String)
        case deadline(at: Int)
        case upstreamClosed(String)
        case listenerOpened
        case listenerClosed
        case gatewayListChanged
        case close
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var mode: RelayRequests<String>.Mode = .session(backlogLimit: 3)
        var steps: [(Input, [String])]
        var testDescription: String { name }
    }

    static let t0 = ContinuousClock.now

    static func key(_ text: String) -> JSONRPCID { JSONRPCID(raw: Array(text.utf8))! }

    static func ticket() -> ToolCallTicket {
        ToolCallTicket(callID: UUID(), identity: SessionIdentity(agent: "a", grant: "g", session: "s", server: "srv"), tool: "t", reservations: [])
    }

    /// Gateway-written errors as `error(id,code)`; anything else as its text.
    static func render(_ bytes: [UInt8]) -> String {
        if let message = try? JSONRPCMessage(parsing: bytes), message.kind == .error, let code = message.errorCode,
            message.errorMessage != "boom"
        {
            return "error(\(message.id?.description ?? "null"),\(code))"
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func render(_ action: RelayRequests<String>.Action) -> String {
        switch action {
        case .send(let bytes, let sink): "send \(sink): \(render(bytes))"
        case .answer(let bytes, let sink, let ticket, let outcome): "answer \(sink): \(render(bytes))" + (ticket == nil ? "" : " [\(outcome.name)]")
        case .answerToolList(let list, let sink, let first):
            "list \(sink): \(list.tools.map(\.name).joined(separator: ","))\(first ? "" : " (more)")"
        case .answerInstead(let bytes, let sink, let ticket, let outcome):
            "instead \(sink): \(bytes.map(render) ?? "end")" + (ticket == nil ? "" : " [\(outcome.name)]")
        case .reply(let message, let sink): "reply \(sink): \(message.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "none")"
        case .toListener(let bytes): "listener: \(render(bytes))"
        case .cancelUpstream(let key, let reason): "cancel upstream \(key): \(reason)"
        case .stopDecision(let key): "stop deciding \(key)"
        case .drop(let why): why.map { "drop: \($0)" } ?? "kept"
        }
    }

    static func run(_ input: Input, on requests: inout RelayRequests<String>) -> [String] {
        let at = { (seconds: Int) in t0 + .seconds(seconds) }
        switch input {
        case .open(let text, let open):
            let request = RelayRequests<String>.Request(
                sink: open.sink, asker: open.gateway ? .gateway : .agent(streams: open.streams), method: open.method,
                agentID: open.agentID.map { Array($0.utf8) }, token: open.token.map(key), agentToken: open.agentToken.map { Array($0.utf8) },
                wantsLogs: open.logs, firstPage: !open.cursor, limit: open.limit.map { .seconds($0) })
            return requests.open(key(text), request) ? [] : ["refused: in use"]
        case .sent(let text, let seconds, let call):
            switch requests.sent(key(text), ticket: call ? ticket() : nil, now: at(seconds)) {
            case .gone: return ["gone"]
            case .sent(let deadline?): return ["deadline \(Int((deadline - t0).components.seconds))"]
            case .sent(nil): return ["no deadline"]
            }
        case .notSent(let text, let error):
            return requests.notSent(key(text), error: .notSent(error)).map { [render($0)] } ?? []
        case .answered(let text):
            return [requests.answered(key(text)) ? "answered" : "gone"]
        case .upstream(let json):
            return [render(requests.upstreamMessage(try! JSONRPCMessage(parsing: Array(json.utf8))))]
        case .upstreamRelated(let json, let text):
            return [render(requests.upstreamMessage(try! JSONRPCMessage(parsing: Array(json.utf8)), relatedTo: key(text)))]
        case .cancelled(let text):
            return requests.cancelled(key(text)).map(render)
        case .hungUp(let text):
            return requests.cancelled(key(text), reason: "the client disconnected").map(render)
        case .deadline(let seconds):
            return requests.deadlinesPassed(now: at(seconds)).map(render).sorted()
        case .upstreamClosed(let reason):
            return requests.upstreamClosed(reason: reason).map(render).sorted()
        case .listenerOpened:
            return requests.listenerOpened().map { "from backlog: " + render($0) }
        case .listenerClosed:
            requests.listenerClosed()
            return []
        case .gatewayListChanged:
            return requests.gatewayNotification("notifications/tools/list_changed").map(render).sorted()
        case .close:
            return requests.close { RelaySession.terminated(id: $0) }.map(render).sorted()
        }
    }

    // MARK: - The table

    static let ok = #"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#
    static let cases: [Case] = [
        Case(
            name: "a response goes to its request's stream, once",
            steps: [
                (.open("7", Open(sink: "a", method: "ping")), []),
                (.sent("7", at: 0), ["deadline 10"]),
                (.upstream(ok), ["answer a: \(ok)"]),
                (.upstream(ok), ["drop: a response for no request in flight"]),
            ]),
        Case(
            name: "a forwarded call's answer carries its outcome for the gate",
            steps: [
                (.open("7", Open(sink: "a")), []), (.sent("7", at: 0, call: true), ["deadline 10"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","id":7,"result":{"isError":true}}"#),
                    [#"answer a: {"jsonrpc":"2.0","id":7,"result":{"isError":true}} [tool_error]"#]
                ),
                (.open("8", Open(sink: "b")), []), (.sent("8", at: 0, call: true), ["deadline 10"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","id":8,"error":{"code":-32602,"message":"boom"}}"#),
                    [#"answer b: {"jsonrpc":"2.0","id":8,"error":{"code":-32602,"message":"boom"}} [rpc_error]"#]
                ),
            ]),
        Case(
            name: "a response to a request still being decided is not its answer",
            steps: [(.open("7", Open(sink: "a")), []), (.upstream(ok), ["drop: a response for no request in flight"])]),
        Case(
            name: "a reused id is refused while the first is in flight, and free once it is answered",
            steps: [
                (.open("7", Open(sink: "a")), []), (.open("7", Open(sink: "b")), ["refused: in use"]),
                (.sent("7", at: 0), ["deadline 10"]), (.upstream(ok), ["answer a: \(ok)"]), (.open("7", Open(sink: "b")), []),
            ]),
        Case(
            name: "an agent's tools/list teaches the catalog and is answered without hidden tools (by the shell)",
            steps: [
                (.open("1", Open(sink: "a", method: "tools/list")), []), (.sent("1", at: 0), ["deadline 10"]),
                (.upstream(#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"secret"}]}}"#), ["list a: echo,secret"]),
                (.open("2", Open(sink: "a", method: "tools/list", cursor: true)), []), (.sent("2", at: 0), ["deadline 10"]),
                (.upstream(#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"more"}]}}"#), ["list a: more (more)"]),
            ]),
        Case(
            name: "progress goes by token to the stream of the request that carried it, until it is answered",
            steps: [
                (.open("9", Open(sink: "a", token: "9")), []), (.open("10", Open(sink: "b", method: "ping")), []),
                (.sent("9", at: 0, call: true), ["deadline 10"]), (.sent("10", at: 0), ["deadline 10"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":9,"progress":1}}"#),
                    [#"send a: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":9,"progress":1}}"#]
                ),
                (.upstream(#"{"jsonrpc":"2.0","id":9,"result":{}}"#), [#"answer a: {"jsonrpc":"2.0","id":9,"result":{}} [success]"#]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":9,"progress":2}}"#),
                    [#"send b: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":9,"progress":2}}"#]
                ),
            ]),
        Case(
            name: "stateless: the agent's id and token are put back",
            mode: .stateless,
            steps: [
                (.open(#""tg-1""#, Open(sink: "a", agentID: #""mine""#, token: #""tgp-1""#, agentToken: "42")), []),
                (.sent(#""tg-1""#, at: 0, call: true), ["deadline 10"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tgp-1","progress":1}}"#),
                    [#"send a: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":42,"progress":1}}"#]
                ),
                (.upstream(#"{"jsonrpc":"2.0","id":"tg-1","result":{}}"#), [#"answer a: {"jsonrpc":"2.0","id":"mine","result":{}} [success]"#]),
            ]),
        Case(
            name: "session: messages nobody asked for go to the listener, else an open event stream, else the backlog",
            steps: [
                (.upstream(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"n":1}}"#), ["kept"]),
                (.upstream(#"{"jsonrpc":"2.0","id":"s1","method":"roots/list"}"#), ["kept"]),
                (
                    .listenerOpened,
                    [
                        #"from backlog: {"jsonrpc":"2.0","method":"notifications/message","params":{"n":1}}"#,
                        #"from backlog: {"jsonrpc":"2.0","id":"s1","method":"roots/list"}"#,
                    ]
                ),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"u"}}"#),
                    [#"listener: {"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"u"}}"#]
                ),
                (.listenerClosed, []),
                (.open("1", Open(sink: "json", method: "ping", streams: false)), []), (.sent("1", at: 0), ["deadline 10"]),
                (.open("2", Open(sink: "sse", method: "ping")), []), (.sent("2", at: 0), ["deadline 10"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"n":2}}"#),
                    [#"send sse: {"jsonrpc":"2.0","method":"notifications/message","params":{"n":2}}"#]
                ),
            ]),
        Case(
            name: "session: the backlog keeps the newest messages",
            steps: [
                (.upstream(#"{"jsonrpc":"2.0","method":"m","params":{"n":1}}"#), ["kept"]),
                (.upstream(#"{"jsonrpc":"2.0","method":"m","params":{"n":2}}"#), ["kept"]),
                (.upstream(#"{"jsonrpc":"2.0","method":"m","params":{"n":3}}"#), ["kept"]),
                (.upstream(#"{"jsonrpc":"2.0","method":"m","params":{"n":4}}"#), ["drop: \(RelayRequests<String>.backlogFull)"]),
                (
                    .listenerOpened,
                    [
                        #"from backlog: {"jsonrpc":"2.0","method":"m","params":{"n":2}}"#,
                        #"from backlog: {"jsonrpc":"2.0","method":"m","params":{"n":3}}"#,
                        #"from backlog: {"jsonrpc":"2.0","method":"m","params":{"n":4}}"#,
                    ]
                ),
            ]),
        Case(
            name: "session: the backlog holds its bytes too, the oldest going first, and never a message larger than all",
            mode: .session(backlogLimit: 100, backlogBytes: 100),
            steps: [
                (.upstream(#"{"jsonrpc":"2.0","method":"m","params":{"n":1}}"#), ["kept"]),
                (.upstream(#"{"jsonrpc":"2.0","method":"m","params":{"n":2}}"#), ["kept"]),
                (.upstream(#"{"jsonrpc":"2.0","method":"m","params":{"n":3}}"#), ["drop: \(RelayRequests<String>.backlogFull)"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"m","params":{"x":"\#(String(repeating: "x", count: 100))"}}"#),
                    ["drop: \(RelayRequests<String>.backlogFull)"]
                ),
                (
                    .listenerOpened,
                    [
                        #"from backlog: {"jsonrpc":"2.0","method":"m","params":{"n":2}}"#,
                        #"from backlog: {"jsonrpc":"2.0","method":"m","params":{"n":3}}"#,
                    ]
                ),
            ]),
        Case(
            name: "stateless: a log message goes to the one request that asked for log messages",
            mode: .stateless,
            steps: [
                (.open(#""tg-1""#, Open(sink: "quiet", agentID: "1")), []), (.sent(#""tg-1""#, at: 0), ["deadline 10"]),
                (.open(#""tg-2""#, Open(sink: "chatty", agentID: "1", logs: true)), []),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"early"}}"#),
                    [
                        "drop: a log message no request in flight asked for"
                    ]
                ),
                (.sent(#""tg-2""#, at: 0), ["deadline 10"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#),
                    [#"send chatty: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#]
                ),
                (.upstream(#"{"jsonrpc":"2.0","id":"tg-2","result":{}}"#), [#"answer chatty: {"jsonrpc":"2.0","id":1,"result":{}}"#]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"late"}}"#),
                    [
                        "drop: a log message no request in flight asked for"
                    ]
                ),
            ]),
        Case(
            name: "stateless: a log message while two requests asked for them goes to neither",
            mode: .stateless,
            steps: [
                (.open(#""tg-1""#, Open(sink: "a", agentID: "1", logs: true)), []), (.sent(#""tg-1""#, at: 0), ["deadline 10"]),
                (.open(#""tg-2""#, Open(sink: "b", agentID: "1", logs: true)), []), (.sent(#""tg-2""#, at: 0), ["deadline 10"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x"}}"#),
                    [
                        "drop: a log message while several requests asked for them: whose it is cannot be told"
                    ]
                ),
            ]),
        Case(
            name: "stateless: a log message that came on a request's own stream (HTTP) goes to that request, and never another",
            mode: .stateless,
            steps: [
                (.open(#""tg-1""#, Open(sink: "a", agentID: "1", logs: true)), []), (.sent(#""tg-1""#, at: 0), ["deadline 10"]),
                (.open(#""tg-2""#, Open(sink: "b", agentID: "1", logs: true)), []), (.sent(#""tg-2""#, at: 0), ["deadline 10"]),
                (
                    .upstreamRelated(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x"}}"#, key: #""tg-2""#),
                    [#"send b: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x"}}"#]
                ),
                (.upstream(#"{"jsonrpc":"2.0","id":"tg-2","result":{}}"#), [#"answer b: {"jsonrpc":"2.0","id":1,"result":{}}"#]),
                (
                    .upstreamRelated(#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"late"}}"#, key: #""tg-2""#),
                    ["drop: a log message for a request no longer in flight"]
                ),
            ]),
        Case(
            name: "stateless: server requests and unstamped notifications have no session to go to",
            mode: .stateless,
            steps: [
                (.open(#""tg-1""#, Open(sink: "a", agentID: "1")), []), (.sent(#""tg-1""#, at: 0), ["deadline 10"]),
                (.upstream(#"{"jsonrpc":"2.0","id":"s1","method":"roots/list"}"#), ["drop: a server message with no session to carry it"]),
                (
                    .upstream(#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#),
                    ["drop: a server message with no session to carry it"]
                ),
            ]),
        Case(
            name: "stateless listen: acknowledged on its own stream with the agent's id, has no deadline, carries its notifications",
            mode: .stateless,
            steps: [
                (.open(#""tg-1""#, Open(sink: "listen", method: "subscriptions/listen", agentID: #""L""#, limit: nil)), []),
                (.sent(#""tg-1""#, at: 0), ["no deadline"]),
                (.gatewayListChanged, []),
                (
                    .upstream(
                        #"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":{"toolsListChanged":true},"_meta":{"io.modelcontextprotocol/subscriptionId":"tg-1"}}}"#
                    ),
                    [
                        #"send listen: {"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":{"toolsListChanged":true},"_meta":{"io.modelcontextprotocol/subscriptionId":"L"}}}"#
                    ]
                ),
                (
                    .upstream(
                        #"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"u","_meta":{"io.modelcontextprotocol/subscriptionId":"tg-1"}}}"#
                    ),
                    [
                        #"send listen: {"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"u","_meta":{"io.modelcontextprotocol/subscriptionId":"L"}}}"#
                    ]
                ),
                (.deadline(at: 100_000), []),
                (
                    .gatewayListChanged,
                    [
                        #"send listen: {"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"L"}}}"#
                    ]
                ),
                (.hungUp(#""tg-1""#), ["instead listen: end", #"cancel upstream "tg-1": the client disconnected"#]),
                (
                    .upstream(
                        #"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"u","_meta":{"io.modelcontextprotocol/subscriptionId":"tg-1"}}}"#
                    ),
                    ["drop: a subscription message for no subscription open"]
                ),
            ]),
        Case(
            name: "listen: the gateway's own list_changed only where the upstream acknowledged toolsListChanged; ends with the upstream",
            mode: .stateless,
            steps: [
                (.open(#""tg-1""#, Open(sink: "l", method: "subscriptions/listen", agentID: "5", limit: nil)), []),
                (.sent(#""tg-1""#, at: 0), ["no deadline"]),
                (
                    .upstream(
                        #"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":{"resourceSubscriptions":["u"]},"_meta":{"io.modelcontextprotocol/subscriptionId":"tg-1"}}}"#
                    ),
                    [
                        #"send l: {"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":{"resourceSubscriptions":["u"]},"_meta":{"io.modelcontextprotocol/subscriptionId":5}}}"#
                    ]
                ),
                (.gatewayListChanged, []),
                (.upstreamClosed("exited with status 1"), ["instead l: error(5,-32603)"]),
            ]),
        Case(
            name: "session listen: the ids are the agent's; the gateway's list_changed goes to the listen stream and the agent",
            steps: [
                (.open("3", Open(sink: "l", method: "subscriptions/listen", limit: nil)), []), (.sent("3", at: 0), ["no deadline"]),
                (
                    .upstream(
                        #"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":{"toolsListChanged":true},"_meta":{"io.modelcontextprotocol/subscriptionId":3}}}"#
                    ),
                    [
                        #"send l: {"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"notifications":{"toolsListChanged":true},"_meta":{"io.modelcontextprotocol/subscriptionId":3}}}"#
                    ]
                ),
                (
                    .gatewayListChanged,
                    [
                        #"send l: {"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":3}}}"#,
                        #"send l: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
                    ]
                ),
            ]),
        Case(
            name: "the agent's cancellation ends the stream without an answer; its own notification goes upstream",
            steps: [
                (.open("7", Open(sink: "a")), []), (.sent("7", at: 0, call: true), ["deadline 10"]),
                (.cancelled("7"), ["instead a: end [cancelled]"]),
                (.upstream(ok), ["drop: a response for no request in flight"]),
                (.cancelled("7"), []),
            ]),
        Case(
            name: "a hang-up while a call is decided stops the decision and nothing is sent",
            steps: [
                (.open("7", Open(sink: "a")), []), (.hungUp("7"), ["stop deciding 7"]), (.sent("7", at: 1, call: true), ["gone"]),
            ]),
        Case(
            name: "a hang-up after the call was sent tells the upstream",
            mode: .stateless,
            steps: [
                (.open(#""tg-4""#, Open(sink: "a", agentID: "1")), []), (.sent(#""tg-4""#, at: 0, call: true), ["deadline 10"]),
                (.hungUp(#""tg-4""#), ["instead a: end [cancelled]", #"cancel upstream "tg-4": the client disconnected"#]),
                (.hungUp(#""tg-4""#), []),
            ]),
        Case(
            name: "deadlines: answered for the upstream (the call timed out), the upstream told; discovery refused",
            mode: .stateless,
            steps: [
                (.open(#""tg-1""#, Open(sink: "a", agentID: "1")), []), (.sent(#""tg-1""#, at: 0, call: true), ["deadline 10"]),
                (.open(#""tg-2""#, Open(sink: "d", method: "server/discover", agentID: "2", limit: 5)), []),
                (.sent(#""tg-2""#, at: 0), ["deadline 5"]),
                (.open(#""tg-3""#, Open(sink: "g", method: "tools/list", gateway: true, limit: 10)), []), (.sent(#""tg-3""#, at: 2), ["deadline 12"]),
                (.deadline(at: 4), []),
                (.deadline(at: 5), [#"cancel upstream "tg-2": timed out in the gateway"#, "instead d: error(2,-32601)"]),
                (
                    .deadline(at: 10),
                    [#"cancel upstream "tg-1": timed out in the gateway"#, "instead a: error(1,-32001) [timed_out]"]
                ),
                (.deadline(at: 12), [#"cancel upstream "tg-3": timed out in the gateway"#, "reply g: none"]),
                (.upstream(#"{"jsonrpc":"2.0","id":"tg-1","result":{}}"#), ["drop: a response for no request in flight"]),
            ]),
        Case(
            name: "the upstream's end answers what was sent on it; what is being decided stays for the next connection",
            steps: [
                (.open("1", Open(sink: "a")), []), (.sent("1", at: 0, call: true), ["deadline 10"]),
                (.open("2", Open(sink: "g", method: "initialize", gateway: true)), []), (.sent("2", at: 0), ["deadline 10"]),
                (.open("3", Open(sink: "held")), []),
                (.upstreamClosed("exited with status 3"), ["instead a: error(1,-32603) [transport_error]", "reply g: none"]),
                (.sent("3", at: 1, call: true), ["deadline 11"]),
            ]),
        Case(
            name: "a request that cannot be sent is answered; one the gate answered leaves quietly",
            steps: [
                (.open("1", Open(sink: "a")), []), (.notSent("1", error: "cannot start"), ["instead a: error(1,-32603)"]),
                (.open("2", Open(sink: "b")), []), (.sent("2", at: 0, call: true), ["deadline 10"]),
                (.notSent("2", error: "pipe closed"), ["instead b: error(2,-32603) [not_sent]"]),
                (.open("3", Open(sink: "c")), []), (.answered("3"), ["answered"]), (.answered("3"), ["gone"]),
                (.notSent("3", error: "late"), []),
            ]),
        Case(
            name: "the session's end answers every request and stops every decision",
            steps: [
                (.open("1", Open(sink: "a")), []), (.sent("1", at: 0, call: true), ["deadline 10"]), (.open("2", Open(sink: "b")), []),
                (.close, ["instead a: error(1,-32600) [cancelled]", "stop deciding 2"]),
            ]),
    ]

    @Test(arguments: cases) func sequence(_ example: Case) {
        var requests = RelayRequests<String>(mode: example.mode)
        for (index, (input, expected)) in example.steps.enumerated() {
            let actions = Self.run(input, on: &requests)
            #expect(actions == expected, "step \(index + 1): \(input)")
        }
    }

    // MARK: - The upstream's lifecycle

    enum LifecycleInput: Sendable {
        case need(at: Double)
        case connected
        case ready(Int)
        case startFailed
        case ended(Int, at: Double)
        case close
    }

    static let lifecycleCases: [(String, [(LifecycleInput, String)])] = [
        (
            "started on the first need, others wait, then use it",
            [(.need(at: 0), "start after 0 ms"), (.need(at: 0), "wait"), (.connected, "generation 1"), (.ready(1), "ready"), (.need(at: 1), "use 1")]
        ),
        (
            "a dead upstream restarts with backoff and the agent's initialize; an old connection's end changes nothing",
            [
                (.need(at: 0), "start after 0 ms"), (.connected, "generation 1"), (.ready(1), "ready"), (.ended(1, at: 0.1), "ended"),
                (.need(at: 0.1), #"start after 100 ms, replaying {"v":1}"#), (.connected, "generation 2"), (.ended(1, at: 0.15), "not current"),
                (.ready(2), "ready"), (.ended(2, at: 0.25), "ended"), (.need(at: 0.25), #"start after 350 ms, replaying {"v":1}"#),
                (.startFailed, "failed"), (.need(at: 0.6), #"start after 800 ms, replaying {"v":1}"#),
            ]
        ),
        (
            "a connection that lived a minute resets the backoff",
            [
                (.need(at: 0), "start after 0 ms"), (.connected, "generation 1"), (.ready(1), "ready"), (.ended(1, at: 0.1), "ended"),
                (.need(at: 0.1), #"start after 100 ms, replaying {"v":1}"#), (.connected, "generation 2"), (.ready(2), "ready"),
                (.ended(2, at: 100), "ended"), (.need(at: 100), #"start after 0 ms, replaying {"v":1}"#), (.connected, "generation 3"),
                (.ready(3), "ready"), (.ended(3, at: 100.05), "ended"), (.need(at: 100.05), #"start after 350 ms, replaying {"v":1}"#),
            ]
        ),
        (
            "a connection that dies while it starts is never used",
            [(.need(at: 0), "start after 0 ms"), (.connected, "generation 1"), (.ended(1, at: 0), "ended"), (.ready(1), "not ready")]
        ),
        (
            "a closed relay starts nothing",
            [(.need(at: 0), "start after 0 ms"), (.connected, "generation 1"), (.ready(1), "ready"), (.close, "close 1"), (.need(at: 1), "closed")]
        ),
    ]

    @Test(arguments: 0..<lifecycleCases.count) func lifecycle(_ index: Int) {
        let (name, steps) = Self.lifecycleCases[index]
        var lifecycle = UpstreamLifecycle<Int>()
        lifecycle.initializeParams = #"{"v":1}"#
        var generation = 0
        for (step, (input, expected)) in steps.enumerated() {
            let at = { (seconds: Double) in Self.t0 + .milliseconds(Int((seconds * 1000).rounded())) }
            let result: String
            switch input {
            case .need(let seconds):
                switch lifecycle.need(now: at(seconds)) {
                case .use(let connection): result = "use \(connection)"
                case .wait: result = "wait"
                case .closed: result = "closed"
                case .start(let delay, let replay):
                    let ms = delay.components.seconds * 1000 + (delay.components.attoseconds + 500_000_000_000_000) / 1_000_000_000_000_000
                    result = "start after \(ms) ms" + (replay.map { ", replaying \($0)" } ?? "")
                }
            case .connected:
                generation = lifecycle.connected()
                result = "generation \(generation)"
            case .ready(let number): result = lifecycle.ready(number, generation: number) ? "ready" : "not ready"
            case .startFailed:
                lifecycle.startFailed()
                result = "failed"
            case .ended(let number, let seconds): result = lifecycle.ended(generation: number, now: at(seconds)) ? "ended" : "not current"
            case .close: result = "close \(lifecycle.close().map(String.init) ?? "nothing")"
            }
            #expect(result == expected, "\(name), step \(step + 1)")
        }
    }

    // MARK: - The catalog

    @Test func theCatalogLearnsFromListingsAndForgetsOnAChangeOrTheUpstreamsEnd() throws {
        var machine = RelayStateMachine<String, Int>(mode: .session(backlogLimit: 1))
        #expect(machine.catalog.tools == nil, "nothing known: a call reads the list first")
        _ = machine.requests.open(Self.key("1"), .init(sink: "a", method: "tools/list", limit: .seconds(1)))
        _ = machine.requests.sent(Self.key("1"), now: Self.t0)
        _ = machine.upstreamMessage(try JSONRPCMessage(parsing: Array(#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}}"#.utf8)))
        #expect(machine.catalog.tools.map { Array($0.keys) } == ["echo"])
        _ = machine.upstreamMessage(try JSONRPCMessage(parsing: Array(#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#.utf8)))
        #expect(machine.catalog.tools == nil, "the upstream's list changed: read it again")
        machine.catalog.listed(["t": ToolDescriptor(name: "t")])
        _ = machine.upstream.need(now: Self.t0)
        let generation = machine.upstream.connected()
        let ready = machine.upstream.ready(3, generation: generation)
        #expect(ready)
        let oldEnd = machine.upstreamEnded(generation: generation + 1, reason: "old", now: Self.t0)
        #expect(oldEnd.isEmpty)
        #expect(machine.catalog.tools != nil, "an old connection's end forgets nothing")
        _ = machine.upstreamEnded(generation: generation, reason: "gone", now: Self.t0)
        #expect(machine.catalog.tools == nil)
    }
}
