/// The events after a position, exactly once and in global order, then each new one as it commits.
///
/// Pull-based: an event is read from the database only when the consumer asks for the next one, so a slow
/// consumer never piles events up in memory. Between reads it waits for the store's change signal
/// (a local commit or a `NOTIFY` from another process) or the poll interval, whichever comes first.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    let store: EventStore
    let start: LogPosition
    let batchSize: Int
    let pollInterval: Duration

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, position: start, batchSize: batchSize, pollInterval: pollInterval)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: EventStore
        /// The position of the last event handed out.
        public private(set) var position: LogPosition
        let batchSize: Int
        let pollInterval: Duration
        var buffer: [RecordedEvent] = []
        var index = 0

        init(store: EventStore, position: LogPosition, batchSize: Int, pollInterval: Duration) {
            self.store = store
            self.position = position
            self.batchSize = batchSize
            self.pollInterval = pollInterval
        }

        /// The next event, or `nil` once the task is cancelled.
        public mutating func next() async throws -> RecordedEvent? {
            let signal = store.changes
            while true {
                if index < buffer.count {
                    let event = buffer[index]
                    index += 1
                    position = event.logPosition
                    return event
                }
                if Task.isCancelled { return nil }
                // Note the generation before reading, so a commit that lands during the read is not slept through.
                let seen = signal.generation
                buffer = try await store.readAll(after: position, limit: batchSize)
                index = 0
                if buffer.isEmpty { await signal.wait(after: seen, timeout: pollInterval) }
            }
        }
    }
}
