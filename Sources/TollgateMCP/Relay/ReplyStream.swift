import Synchronization

/// The messages the relay sends back for one request: what comes before its answer (progress, the server's own
/// requests), then the answer, which ends them. Also the agent's listening stream (its HTTP GET), which has no answer.
///
/// Read as an `AsyncSequence` of message bytes, or with ``AsyncIterator/nextMessage()``, which also says whether a
/// message is the answer, so a transport can send a lone answer as one JSON body without parsing it again.
///
/// Bounded: what the agent has not read yet is held up to `bound` bytes for this stream, and within the process's
/// ``BufferBudget``. The relay never waits for a slow reader (a stateless upstream is shared by every agent); instead:
/// - a message before the answer (progress, a log message, a listening stream's message, a server request) that does
///   not fit is dropped and counted (``BufferBudget/Drop``);
/// - the answer is never dropped: it goes past the stream's bound (one message, at most the message limit), and when
///   the process's budget cannot take it either, the agent gets a short error in its place (the request's stream ends
///   either way).
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

    /// What a request's stream holds unread before it drops what can be dropped: 8 MiB.
    public static let defaultBound = 8 << 20

    let buffer: ReplyBuffer

    /// A stream and the sink that feeds it.
    /// `holding`: kept as long as either end is (a listen stream's place within its agent's cap).
    static func make(
        bound: Int = defaultBound, budget: BufferBudget = .process, holding: (any AnyObject & Sendable)? = nil
    ) -> (ReplyStream, ReplySink) {
        let buffer = ReplyBuffer(bound: bound, budget: budget, holding: holding)
        return (ReplyStream(buffer: buffer), ReplySink(buffer: buffer))
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: ReplyBuffer

        public mutating func next() async -> [UInt8]? { await buffer.next()?.bytes }

        /// The next message, and whether it is the request's answer (then nothing follows it).
        public mutating func nextMessage() async -> (bytes: [UInt8], isAnswer: Bool)? {
            guard let message = await buffer.next() else { return nil }
            return (message.bytes, message.isAnswer)
        }
    }
}

/// The relay's end of a ``ReplyStream``.
struct ReplySink: Sendable {
    let buffer: ReplyBuffer

    /// A message before the answer; false when it was not kept (the reader is gone or too far behind: dropped).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        buffer.push(.init(bytes: bytes, isAnswer: false))
    }

    /// The request's answer (its response, or an error in its place): the stream ends with it.
    func answer(_ bytes: [UInt8]) {
        buffer.push(.init(bytes: bytes, isAnswer: true))
    }

    /// Ends the stream without an answer (the agent gave the request up).
    func finish() {
        buffer.finish()
    }

    /// Whether the reader has gone away (it stopped reading: the agent hung up).
    var isTerminated: Bool { buffer.isTerminated }
}

/// The queue behind a ``ReplyStream``: one writer (the relay), one reader (the transport).
final class ReplyBuffer: Sendable {
    private struct State {
        var queue: [ReplyStream.Message] = []
        /// The queue's first unread element (the queue is compacted when it has been read half through).
        var head = 0
        var bytes = 0
        var finished = false
        /// The reader went away: nothing more is kept.
        var terminated = false
        var waiting: CheckedContinuation<ReplyStream.Message?, Never>?
    }

    let bound: Int
    let budget: BufferBudget
    private let held: (any AnyObject & Sendable)?
    private let state = Mutex(State())

    init(bound: Int, budget: BufferBudget, holding: (any AnyObject & Sendable)? = nil) {
        self.bound = bound
        self.budget = budget
        self.held = holding
    }

    /// What one message costs against the bounds: its bytes and a little for its bookkeeping.
    static func cost(_ message: ReplyStream.Message) -> Int { message.bytes.count + 64 }

    var isTerminated: Bool { state.withLock { $0.terminated } }

    /// Keeps `message` for the reader (or hands it over at once); false when it was dropped.
    @discardableResult
    func push(_ message: ReplyStream.Message) -> Bool {
        enum Step {
            case handOver(CheckedContinuation<ReplyStream.Message?, Never>, ReplyStream.Message)
            case kept
            case dropped(BufferBudget.Drop?)
        }
        let step = state.withLock { state -> Step in
            guard !state.finished, !state.terminated else { return .dropped(nil) }
            if message.isAnswer { state.finished = true }
            if let waiting = state.waiting {
                state.waiting = nil
                return .handOver(waiting, message)
            }
            let cost = Self.cost(message)
            var kept = message
            if message.isAnswer {
                if !budget.reserve(cost, force: false) {
                    // The answer is never dropped, but the process cannot hold it: a short error goes in its place.
                    kept = ReplyStream.Message(bytes: BufferBudget.answerDropped(for: message.bytes), isAnswer: true)
                    budget.reserve(Self.cost(kept), force: true)
                    budget.count(.answerReplaced)
                }
            } else {
                guard state.bytes + cost <= bound else { return .dropped(.streamFull) }
                guard budget.reserve(cost, force: false) else { return .dropped(.processFull) }
            }
            state.bytes += Self.cost(kept)
            state.queue.append(kept)
            return .kept
        }
        switch step {
        case .handOver(let waiting, let message):
            waiting.resume(returning: message)
            return true
        case .kept:
            return true
        case .dropped(let reason):
            if let reason { budget.count(reason) }
            return false
        }
    }

    func finish() {
        let waiting = state.withLock { state -> CheckedContinuation<ReplyStream.Message?, Never>? in
            state.finished = true
            guard state.head == state.queue.count else { return nil }
            defer { state.waiting = nil }
            return state.waiting
        }
        waiting?.resume(returning: nil)
    }

    /// The next message; nil at the end, or when the reading task is cancelled (then the stream is terminated).
    func next() async -> ReplyStream.Message? {
        guard !Task.isCancelled else {
            terminate()
            return nil
        }
        if let ready = take() { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ReplyStream.Message?, Never>) in
                let now = state.withLock { state -> ReplyStream.Message?? in
                    if let message = Self.pop(&state, budget: budget) { return .some(message) }
                    if state.finished || state.terminated { return .some(nil) }
                    state.waiting = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            terminate()
        }
    }

    /// The reader went away: what is kept is given back, and nothing more is.
    func terminate() {
        let waiting = state.withLock { state -> CheckedContinuation<ReplyStream.Message?, Never>? in
            state.terminated = true
            budget.release(state.bytes)
            state.bytes = 0
            state.queue.removeAll()
            state.head = 0
            defer { state.waiting = nil }
            return state.waiting
        }
        waiting?.resume(returning: nil)
    }

    /// The next message kept, `.some(nil)` at the end, nil when the reader must wait.
    private func take() -> ReplyStream.Message?? {
        state.withLock { state in
            if let message = Self.pop(&state, budget: budget) { return .some(message) }
            if state.terminated || (state.finished && state.head == state.queue.count) { return .some(nil) }
            return nil
        }
    }

    private static func pop(_ state: inout State, budget: BufferBudget) -> ReplyStream.Message? {
        guard state.head < state.queue.count else { return nil }
        let message = state.queue[state.head]
        state.queue[state.head].bytes = []
        state.head += 1
        let cost = Self.cost(message)
        state.bytes -= cost
        budget.release(cost)
        if state.head == state.queue.count {
            state.queue.removeAll(keepingCapacity: state.queue.count <= 64)
            state.head = 0
        } else if state.head >= 64, state.head * 2 >= state.queue.count {
            state.queue.removeFirst(state.head)
            state.head = 0
        }
        return message
    }

    deinit {
        let left = state.withLock { $0.bytes }
        if left > 0 { budget.release(left) }
    }
}

/// The bytes the relay holds for agents that have not read them yet, across the whole process, within one limit
/// (`limits.max_buffered_bytes`, 256 MiB by default), and what was dropped for want of room.
///
/// ```swift
/// BufferBudget.process.limit = 256 << 20   // at start
/// BufferBudget.process.bufferedBytes       // for the metric
/// ```
public final class BufferBudget: Sendable {
    /// Why a message was not kept.
    public enum Drop: String, Sendable, CaseIterable {
        /// Its stream (a request's, or a listening stream) held its bound already.
        case streamFull = "stream_full"
        /// The process held its bound already.
        case processFull = "process_full"
        /// A session's backlog (messages for an agent without a listening stream) was full: its oldest went.
        case backlogFull = "backlog_full"
        /// An answer the process could not hold, replaced by a short error.
        case answerReplaced = "answer_replaced"
    }

    /// The one budget of the process.
    public static let process = BufferBudget()

    private let limitStorage: Atomic<Int>
    private let used = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    private let drops = Mutex<[Drop: Int]>([:])

    public init(limit: Int = 256 << 20) {
        limitStorage = Atomic(limit)
    }

    /// The most bytes held at once.
    public var limit: Int {
        get { limitStorage.load(ordering: .relaxed) }
        set { limitStorage.store(newValue, ordering: .relaxed) }
    }

    /// Bytes held now.
    public var bufferedBytes: Int { used.load(ordering: .relaxed) }

    /// The most bytes held at once so far.
    public var peakBytes: Int { peak.load(ordering: .relaxed) }

    /// Messages dropped so far for `reason`.
    public func dropped(_ reason: Drop) -> Int { drops.withLock { $0[reason, default: 0] } }

    /// Takes `bytes` from the budget; false (nothing taken) when they do not fit, unless `force`.
    @discardableResult
    func reserve(_ bytes: Int, force: Bool) -> Bool {
        let limit = self.limit
        var current = used.load(ordering: .relaxed)
        while true {
            guard force || current + bytes <= limit else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged {
                peak.max(current + bytes, ordering: .relaxed)
                return true
            }
            current = original
        }
    }

    func release(_ bytes: Int) {
        used.subtract(bytes, ordering: .relaxed)
    }

    func count(_ reason: Drop) {
        drops.withLock { $0[reason, default: 0] += 1 }
    }

    /// The error that replaces an answer the process could not hold: with the answer's id when it can be read.
    static func answerDropped(for answer: [UInt8]) -> [UInt8] {
        let id = (try? JSONRPCMessage(parsing: answer))?.id
        return JSONRPCWriter.error(
            id: id, code: -32603,
            message: "Internal error: the gateway holds too many unread bytes (limits.max_buffered_bytes); the upstream's answer was dropped")
    }
}

/// The cap on each agent's open `subscriptions/listen` streams (`limits.max_listen_streams_per_agent`, 16 by default),
/// across its sessions and its stateless requests: the next one is refused at once.
public final class ListenStreamCap: Sendable {
    public let limit: Int
    private let open = Mutex<[String: Int]>([:])

    public init(limit: Int = 16) { self.limit = limit }

    /// A place for one more stream of `agent`, held until it is released (its stream has ended); nil at the cap.
    func take(_ agent: String) -> Place? {
        let taken = open.withLock { open -> Bool in
            guard open[agent, default: 0] < limit else { return false }
            open[agent, default: 0] += 1
            return true
        }
        return taken ? Place(cap: self, agent: agent) : nil
    }

    /// Streams `agent` has open now.
    public func openStreams(of agent: String) -> Int { open.withLock { $0[agent, default: 0] } }

    fileprivate func release(_ agent: String) {
        open.withLock { open in
            open[agent, default: 1] -= 1
            if open[agent] == 0 { open[agent] = nil }
        }
    }

    /// One stream's place: given back when the last reference to it goes (both ends of its ``ReplyStream``).
    final class Place: Sendable {
        let cap: ListenStreamCap
        let agent: String

        init(cap: ListenStreamCap, agent: String) {
            self.cap = cap
            self.agent = agent
        }

        deinit { cap.release(agent) }
    }

    /// The refusal of a stream past the cap.
    func refusal(id: JSONRPCID?) -> [UInt8] {
        JSONRPCWriter.error(
            id: id, code: -32600,
            message:
                "Invalid Request: this agent has \(limit) subscriptions/listen streams open already, the most it may (limits.max_listen_streams_per_agent); close one first"
        )
    }
}
