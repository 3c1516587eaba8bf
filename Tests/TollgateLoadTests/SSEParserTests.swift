import Testing

@testable import tollgate_load

struct SSEParserTests {
    private func events(_ chunks: [String]) -> [String] {
        var parser = SSEParser()
        return chunks.flatMap { parser.feed(Array($0.utf8)) }.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func anEventEndsAtABlankLine() {
        #expect(events(["event: message\ndata: {\"id\":1}\n\n"]) == [#"{"id":1}"#])
        #expect(events(["data: {\"id\":1}\n"]) == [])
    }

    @Test func linesEndWithLFCRLFOrCR() {
        #expect(events(["data: a\r\n\r\ndata: b\r\rdata: c\n\n"]) == ["a", "b", "c"])
    }

    @Test func chunksMaySplitLinesAnywhere() {
        let stream = "id: 7\r\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":3}\r\n\r\n"
        let bytes = stream.map(String.init)
        #expect(events(bytes) == ["{\"jsonrpc\":\"2.0\",\n\"id\":3}"])
        // A CR at the end of one chunk and its LF at the start of the next make one line break, not two.
        #expect(events(["data: x\r", "\n\r", "\n"]) == ["x"])
    }

    @Test func dataLinesAreJoinedWithLF() {
        #expect(events(["data: one\ndata:two\ndata:  three\n\n"]) == ["one\ntwo\n three"])
    }

    @Test func commentsOtherFieldsAndEmptyEventsAreSkipped() {
        let stream = ": keep-alive\n\nid: 1\ndata:\n\nretry: 100\nevent: message\ndata: payload\n\n"
        #expect(events([stream]) == ["payload"])
    }

    @Test func aFieldWithoutColonIsItsNameWithAnEmptyValue() {
        #expect(events(["data\ndata: x\n\n"]) == ["\nx"])
    }
}
