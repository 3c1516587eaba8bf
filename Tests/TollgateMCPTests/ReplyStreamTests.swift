import Testing

@testable import TollgateMCP

@Suite struct ReplyStreamTests {
    @Test func theAnswerIsMarkedAndEndsTheStream() async {
        let (replies, sink) = ReplyStream.make()
        sink.send(Array("progress 1".utf8))
        sink.send(Array("progress 2".utf8))
        sink.answer(Array("response".utf8))
        sink.send(Array("too late".utf8))
        var iterator = replies.makeAsyncIterator()
        var seen: [(String, Bool)] = []
        while let message = await iterator.nextMessage() { seen.append((String(decoding: message.bytes, as: UTF8.self), message.isAnswer)) }
        #expect(seen.map(\.0) == ["progress 1", "progress 2", "response"])
        #expect(seen.map(\.1) == [false, false, true])
    }

    @Test func aStreamGivenUpEndsWithoutAnAnswer() async {
        let (replies, sink) = ReplyStream.make()
        sink.send(Array("progress".utf8))
        sink.finish()
        var iterator = replies.makeAsyncIterator()
        #expect(await iterator.nextMessage()?.isAnswer == false)
        #expect(await iterator.nextMessage() == nil)
    }

    @Test func readAsASequenceItGivesEachMessagesBytes() async {
        let (replies, sink) = ReplyStream.make()
        let reader = Task {
            var all: [String] = []
            for await bytes in replies { all.append(String(decoding: bytes, as: UTF8.self)) }
            return all
        }
        sink.send(Array("a".utf8))
        sink.answer(Array("b".utf8))
        #expect(await reader.value == ["a", "b"])
    }
}
