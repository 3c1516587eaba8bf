/// The messages the relay sends back for one request: what comes before its answer (progress, the server's own
/// requests), then the answer, which ends them.
///
/// Read as an `AsyncSequence` of message bytes, or with ``AsyncIterator/nextMessage()``, which also says whether a
/// message is the answer, so a transport can send a lone answer as one JSON body without parsing it again.
///
/// ```swift
/// let (replies, sink) = ReplyStream.make()
/// sink.send(progress)      // before the answer
/// sink.answer(response)    // the answer; the stream ends
/// for await bytes in replies { ... }
/// ```
public struct ReplyStream: AsyncSequence, Sendable {
    public typealias Element = [UInt8]

    struct Message: Sendable {
        var bytes: [UInt8]
        var isAnswer: Bool
    }

    private let messages: AsyncStream<Message>

    /// A stream and the sink that feeds it (unbounded: a request's messages are few, and each is already in memory).
    static func make() -> (ReplyStream, ReplySink) {
        let (messages, continuation) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .unbounded)
        return (ReplyStream(messages: messages), ReplySink(continuation: continuation))
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: messages.makeAsyncIterator()) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<Message>.AsyncIterator

        public mutating func next() async -> [UInt8]? { await base.next()?.bytes }

        /// The next message, and whether it is the request's answer (then nothing follows it).
        public mutating func nextMessage() async -> (bytes: [UInt8], isAnswer: Bool)? {
            guard let message = await base.next() else { return nil }
            return (message.bytes, message.isAnswer)
        }
    }
}

/// The relay's end of a ``ReplyStream``.
struct ReplySink: Sendable {
    let continuation: AsyncStream<ReplyStream.Message>.Continuation

    /// A message before the answer.
    func send(_ bytes: [UInt8]) {
        continuation.yield(.init(bytes: bytes, isAnswer: false))
    }

    /// The request's answer (its response, or an error in its place): the stream ends with it.
    func answer(_ bytes: [UInt8]) {
        continuation.yield(.init(bytes: bytes, isAnswer: true))
        continuation.finish()
    }

    /// Ends the stream without an answer (the agent gave the request up).
    func finish() {
        continuation.finish()
    }
}
