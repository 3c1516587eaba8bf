import NIOCore
import NIOHTTP1

/// Reads one HTTP response to an MCP request, part by part, into a ``ResponseOutcome``.
///
/// A Streamable HTTP server may answer a request with `application/json` (the whole JSON-RPC response as the body)
/// or with `text/event-stream` (events whose `data` hold JSON-RPC messages, the response among them, perhaps after
/// notifications). For an event stream the outcome is known as soon as the event with the response arrives, which
/// may be before the stream ends; each `receive` returns the outcome once, when it first becomes known.
///
/// ```swift
/// var reader = ResponseReader(requestID: 7)
/// reader.receiveHead(head)
/// if let outcome = reader.receiveBody(buffer) ?? reader.receiveEnd() { ... }
/// ```
struct ResponseReader {
    private enum State {
        case awaitingHead
        case json(ByteBuffer)
        case eventStream(SSEParser)
        /// The outcome is decided already, or will be by the status alone; the body is skipped.
        case skipping
        case done
    }

    /// The JSON-RPC id of the request, or `nil` when the request expects only a status.
    let requestID: Int?
    /// The `Mcp-Session-Id` response header, if the server sent one.
    private(set) var sessionID: String?
    private var state = State.awaitingHead
    private var status = 0
    private var decided: ResponseOutcome?
    private var reported = false

    init(requestID: Int?) {
        self.requestID = requestID
    }

    mutating func receiveHead(_ head: HTTPResponseHead) {
        status = Int(head.status.code)
        sessionID = head.headers.first(name: "Mcp-Session-Id")
        guard (200..<300).contains(status) else {
            decided = .httpError(status: status)
            state = .skipping
            return
        }
        guard requestID != nil else {
            decided = .acknowledged(status: status)
            state = .skipping
            return
        }
        let contentType = head.headers.first(name: "Content-Type")?.lowercased() ?? ""
        if contentType.hasPrefix("text/event-stream") {
            state = .eventStream(SSEParser())
        } else if contentType.hasPrefix("application/json") {
            state = .json(ByteBuffer())
        } else {
            let shown = contentType.isEmpty ? "no Content-Type" : "Content-Type \(contentType)"
            decided = .malformed("HTTP \(status) with \(shown) to a request")
            state = .skipping
        }
    }

    mutating func receiveBody(_ buffer: ByteBuffer) -> ResponseOutcome? {
        switch state {
        case .json(var body):
            state = .done  // drop the reference so that the append does not copy
            body.writeImmutableBuffer(buffer)
            state = .json(body)
            return nil
        case .eventStream(var parser):
            state = .done
            let events = parser.feed(buffer.readableBytesView)
            state = .eventStream(parser)
            guard decided == nil else { return nil }
            for event in events {
                if let outcome = match(event) {
                    decided = outcome
                    state = .skipping
                    return report()
                }
            }
            return nil
        case .awaitingHead, .skipping, .done:
            return nil
        }
    }

    /// The end of the response: returns the outcome unless it was returned already.
    mutating func receiveEnd() -> ResponseOutcome? {
        switch state {
        case .json(let body):
            decided =
                match(Array(body.readableBytesView))
                ?? .malformed("the JSON body holds no response with id \(requestID.map(String.init) ?? "?")")
        case .eventStream:
            decided = .malformed("the event stream ended without the response with id \(requestID.map(String.init) ?? "?")")
        case .awaitingHead:
            decided = .malformed("the response ended before its head")
        case .skipping, .done:
            break
        }
        state = .done
        return report()
    }

    private mutating func report() -> ResponseOutcome? {
        guard !reported, let decided else { return nil }
        reported = true
        return decided
    }

    /// The outcome a JSON-RPC message (or batch) gives, if it holds the response to the request; `nil` otherwise.
    private func match(_ text: [UInt8]) -> ResponseOutcome? {
        let message: JSONValue
        do {
            message = try JSONValue(parsing: text)
        } catch {
            return .malformed("invalid JSON (\(error))")
        }
        if case .array(let batch) = message {
            return batch.lazy.compactMap(outcome(of:)).first
        }
        return outcome(of: message)
    }

    private func outcome(of message: JSONValue) -> ResponseOutcome? {
        guard let requestID, message["id"]?.integer == requestID else { return nil }
        if let result = message["result"] {
            return .result(result)
        }
        if let error = message["error"] {
            return .rpcError(code: error["code"]?.integer ?? 0, message: error["message"]?.string ?? "")
        }
        return .malformed("the response with id \(requestID) has neither result nor error")
    }
}
