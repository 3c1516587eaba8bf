import NIOCore
import NIOHTTP1
import Testing

@testable import tollgate_load

struct ResponseReaderTests {
    private func head(_ status: HTTPResponseStatus, _ headers: [(String, String)]) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(headers))
    }

    /// Feeds a whole response; returns each outcome with the part that gave it ("body 2", "end").
    private func read(_ reader: inout ResponseReader, _ head: HTTPResponseHead, _ chunks: [String]) -> [(String, ResponseOutcome)] {
        var outcomes: [(String, ResponseOutcome)] = []
        reader.receiveHead(head)
        for (index, chunk) in chunks.enumerated() {
            if let outcome = reader.receiveBody(ByteBuffer(string: chunk)) { outcomes.append(("body \(index)", outcome)) }
        }
        if let outcome = reader.receiveEnd() { outcomes.append(("end", outcome)) }
        return outcomes
    }

    @Test func aJSONResponseIsReadAtTheEnd() {
        var reader = ResponseReader(requestID: 5)
        let outcomes = read(
            &reader,
            head(.ok, [("Content-Type", "application/json"), ("Mcp-Session-Id", "abc")]),
            [#"{"jsonrpc":"2.0","#, #""id":5,"result":{"isError":false}}"#]
        )
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.0 == "end")
        guard case .result(let result) = outcomes.first?.1 else { Issue.record("\(outcomes)"); return }
        #expect(result["isError"]?.bool == false)
        #expect(reader.sessionID == "abc")
    }

    @Test func anEventStreamAnswersAsSoonAsTheResponseEventArrives() {
        var reader = ResponseReader(requestID: 9)
        let outcomes = read(
            &reader,
            head(.ok, [("Content-Type", "text/event-stream; charset=utf-8")]),
            [
                "id: 1\ndata:\n\n",
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n",
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-32602,\"message\":\"bad\"}}\n\n",
                ": the stream stays open a while\n\n",
            ]
        )
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.0 == "body 2")
        guard case .rpcError(let code, let message) = outcomes.first?.1 else { Issue.record("\(outcomes)"); return }
        #expect(code == -32602 && message == "bad")
    }

    @Test func aStreamThatEndsWithoutTheResponseIsMalformed() {
        var reader = ResponseReader(requestID: 9)
        let outcomes = read(&reader, head(.ok, [("Content-Type", "text/event-stream")]), ["data: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{}}\n\n"])
        guard case .malformed = outcomes.first?.1 else { Issue.record("\(outcomes)"); return }
    }

    @Test func aResponseWithAnotherIDIsMalformed() {
        var reader = ResponseReader(requestID: 1)
        let outcomes = read(&reader, head(.ok, [("Content-Type", "application/json")]), [#"{"jsonrpc":"2.0","id":2,"result":{}}"#])
        guard case .malformed = outcomes.first?.1 else { Issue.record("\(outcomes)"); return }
    }

    @Test func aBatchIsSearchedForTheResponse() {
        var reader = ResponseReader(requestID: 3)
        let outcomes = read(
            &reader,
            head(.ok, [("Content-Type", "application/json")]),
            [#"[{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":3,"result":{"isError":true}}]"#]
        )
        guard case .result(let result) = outcomes.first?.1 else { Issue.record("\(outcomes)"); return }
        #expect(result["isError"]?.bool == true)
    }

    @Test func statusesOutside2xxAreHTTPErrorsWhateverTheBody() {
        var reader = ResponseReader(requestID: 1)
        let outcomes = read(
            &reader,
            head(.tooManyRequests, [("Content-Type", "application/json")]),
            [#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"slow down"}}"#]
        )
        guard case .httpError(429) = outcomes.first?.1 else { Issue.record("\(outcomes)"); return }
    }

    @Test func aNotificationIsAcknowledgedByItsStatus() {
        var reader = ResponseReader(requestID: nil)
        let outcomes = read(&reader, head(.accepted, []), [])
        guard case .acknowledged(202) = outcomes.first?.1 else { Issue.record("\(outcomes)"); return }
    }

    @Test func anotherContentTypeIsMalformed() {
        var reader = ResponseReader(requestID: 1)
        let outcomes = read(&reader, head(.ok, [("Content-Type", "text/plain")]), ["hello"])
        guard case .malformed(let reason) = outcomes.first?.1 else { Issue.record("\(outcomes)"); return }
        #expect(reason.contains("text/plain"))
    }
}
