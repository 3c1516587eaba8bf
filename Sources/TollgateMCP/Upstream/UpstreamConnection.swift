import Foundation

/// A connection to one upstream MCP server, carrying the messages of one relay session.
///
/// Two implementations: ``StdioUpstreamConnection`` (a child process speaking newline-delimited JSON-RPC) and
/// ``HTTPUpstreamConnection`` (Streamable HTTP, or the legacy HTTP+SSE transport of 2024-11-05).
public protocol UpstreamConnection: AnyObject, Sendable {
    /// Everything the upstream sends, in order. Finishes after a `.closed` event.
    var events: AsyncStream<UpstreamEvent> { get }
    /// Sends one message (its bytes as received from downstream, or one the gateway wrote).
    func send(_ message: JSONRPCMessage) async throws(UpstreamError)
    /// Ends the connection: terminates a child process with its process group, or deletes the HTTP session.
    func close() async
    /// The relay has dealt with `event`: its bytes no longer count against the connection's read-ahead
    /// (``PendingEvents``), so its reader may go on.
    func taken(_ event: UpstreamEvent)
    /// The relay gave request `id` up after it was sent: what is still being read for it alone (an HTTP answer's event
    /// stream) stops.
    func abandon(_ id: JSONRPCID)
}

extension UpstreamConnection {
    public func taken(_ event: UpstreamEvent) {}
    public func abandon(_ id: JSONRPCID) {}
}

/// The bytes an upstream connection has read that its relay has not dealt with yet, within a bound (4 MiB by
/// default, or one message when it is larger): past it, the reader stops reading the upstream until the relay has
/// caught up, so an upstream that floods the gateway is held back by the socket or pipe rather than queued in memory.
/// The relay itself never waits for an agent (``ReplyStream`` drops what a slow agent cannot take), so this only
/// bounds the moments when the relay is busier than the upstream is fast.
final class PendingEvents: @unchecked Sendable {
    static let defaultLimit = 4 << 20

    let limit: Int
    private let lock = NSCondition()
    private var bytes = 0
    private var closed = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int = defaultLimit) { self.limit = limit }

    private func admits(_ cost: Int) -> Bool { closed || bytes == 0 || bytes + cost <= limit }

    /// From a reader thread: waits while the relay is behind, then counts `cost`.
    func enterBlocking(_ cost: Int) {
        lock.lock()
        while !admits(cost) { lock.wait() }
        bytes += cost
        lock.unlock()
    }

    /// From a reading task: waits while the relay is behind, then counts `cost`.
    func enter(_ cost: Int) async {
        while !tryEnter(cost) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if !park(continuation, cost) { continuation.resume() }
            }
        }
    }

    private func tryEnter(_ cost: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard admits(cost) else { return false }
        bytes += cost
        return true
    }

    /// Keeps `continuation` to be resumed when the relay catches up; false when it has already.
    private func park(_ continuation: CheckedContinuation<Void, Never>, _ cost: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !admits(cost) else { return false }
        waiters.append(continuation)
        return true
    }

    /// The relay dealt with `cost` bytes.
    func leave(_ cost: Int) {
        lock.lock()
        bytes = max(0, bytes - cost)
        let woken = waiters
        waiters.removeAll()
        lock.broadcast()
        lock.unlock()
        for waiter in woken { waiter.resume() }
    }

    /// The connection ends: nobody waits any more.
    func close() {
        lock.lock()
        closed = true
        let woken = waiters
        waiters.removeAll()
        lock.broadcast()
        lock.unlock()
        for waiter in woken { waiter.resume() }
    }
}

extension UpstreamEvent {
    /// What the event counts against a connection's read-ahead.
    var cost: Int {
        switch self {
        case .message(let message), .related(let message, _): message.bytes.count + 64
        case .garbage(let text): text.utf8.count + 64
        case .closed: 0
        }
    }
}

extension UpstreamConnection {
    /// Tells the upstream that the gateway gave up request `id` (`notifications/cancelled`), and why. Best effort: a
    /// connection that cannot take it is closing anyway.
    func sendCancellation(of id: JSONRPCID, reason: String) async {
        let params = #"{"requestId":\#(String(decoding: id.raw, as: UTF8.self)),"reason":\#(JSONRPCWriter.string(reason))}"#
        guard let cancel = try? JSONRPCMessage(parsing: JSONRPCWriter.notification(method: "notifications/cancelled", params: params)) else { return }
        try? await send(cancel)
    }
}

/// What arrives from an upstream.
public enum UpstreamEvent: Sendable {
    /// A JSON-RPC message.
    case message(JSONRPCMessage)
    /// A notification the upstream sent on the stream of request `to` (a Streamable HTTP POST's event stream), so it
    /// belongs to that request (a log message sent while answering it).
    case related(JSONRPCMessage, to: JSONRPCID)
    /// Output that is not a JSON-RPC message (a stray print on a stdio server's stdout); logged and skipped.
    case garbage(String)
    /// The connection ended; no more events follow.
    case closed(reason: String)
}

/// Why a message could not be sent upstream, or its sending failed.
public struct UpstreamError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// A JSON-RPC error response the upstream sent instead (an HTTP upstream answering 4xx with a JSON-RPC body).
    public var response: JSONRPCMessage?
    /// Whether the message certainly never reached the upstream: not one byte of it was written (the child was not
    /// running, its pipe had no reader, the connection could not be opened, the client was closed). When false, the
    /// upstream may have received it, and a tool call may have run: a failure after the request went out (an HTTP
    /// status, a connection dropped while waiting for the answer) is never counted as unsent.
    public var notSent: Bool

    public init(_ message: String, response: JSONRPCMessage? = nil, notSent: Bool = false) {
        self.message = message
        self.response = response
        self.notSent = notSent
    }

    /// A failure before any of the message was written.
    public static func notSent(_ message: String) -> UpstreamError { UpstreamError(message, notSent: true) }

    public var description: String { message }
}
