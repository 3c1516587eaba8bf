import ArgumentParser
import Foundation
import Logging
import Synchronization
import TollgatePostgres

/// Event store figures on a durable cluster: single-event appends per second at several concurrencies, batched
/// appends, catch-up reading, and how long a commit takes to wake a subscriber in another process's store.
struct EventStoreBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eventstore",
        abstract: "Appends/s, batched events/s, catch-up events/s and cross-instance wake-up latency.",
        discussion: """
            Without --database, starts a throw-away embedded cluster with PostgreSQL's durable defaults \
            (fsync on) in a temporary directory and removes it afterwards.
            """
    )

    @Option(help: "A libpq connection string or URL of a database to use (its tollgate schema is migrated).")
    var database: String?

    @Option(help: "Seconds per append measurement.")
    var seconds: Double = 5

    @Option(help: "Events to write in batches of 100 and then read back for the catch-up figure.")
    var catchUpEvents: Int = 200_000

    @Option(help: "Wake-up samples.")
    var wakeups: Int = 500

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let bench = try BenchDatabase(connectionString: database, name: "eventstore", logger: logger)
        defer { bench.close() }
        let configuration = bench.configuration
        let client = PostgresClient(configuration: configuration, options: .init(maxConnections: 8), logger: logger)
        try await Migrator(logger: logger).migrate(client)
        let store = EventStore(client: client, logger: logger)
        let payload = Array(#"{"tool":"transfer","agent":"bench","amount":1200,"note":"a typical small decision event"}"#.utf8)
        let run = UUID().uuidString.prefix(8)

        for concurrency in [1, 8, 32] {
            let count = try await appendLoop(store: store, concurrency: concurrency, seconds: seconds) { worker, index in
                ("bench-\(run)-c\(concurrency)-\(worker)-\(index)", [NewEvent(type: "Bench", data: payload)])
            }
            print(String(format: "appends, 1 event each, concurrency %2d: %8.0f appends/s", concurrency, Double(count) / seconds))
        }

        let batch = [NewEvent](repeating: NewEvent(type: "Bench", data: payload), count: 100)
        let batches = try await appendLoop(store: store, concurrency: 4, seconds: seconds) { worker, index in
            ("bench-\(run)-batch-\(worker)-\(index)", batch)
        }
        print(String(format: "appends, 100 events each, concurrency 4: %8.0f events/s", Double(batches * 100) / seconds))

        // Seed up to the catch-up size, then read everything from the start in pages of 1,000.
        let head = try await client.query("SELECT count(*) FROM tollgate.events").rows[0].decode(Int.self, 0)
        if head < catchUpEvents {
            let missing = (catchUpEvents - head + 99) / 100
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        for index in stride(from: worker, to: missing, by: 4) {
                            try await store.append(stream: "bench-\(run)-seed-\(index)", expectedVersion: .noStream, events: batch)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let clock = ContinuousClock()
        var position = LogPosition.start
        var read = 0
        let elapsed = try await clock.measure {
            while true {
                let page = try await store.readAll(after: position, limit: 1000)
                guard let last = page.last else { break }
                read += page.count
                position = last.logPosition
            }
        }
        print(String(format: "catch-up readAll, pages of 1000: %8.0f events/s (%d events)", Double(read) / elapsed.seconds, read))

        // Wake-up: a second store with its own pool and LISTEN connection stands for another gateway process.
        let otherClient = PostgresClient(configuration: configuration, options: .init(maxConnections: 2), logger: logger)
        let other = EventStore(client: otherClient, logger: logger)
        let latencies = try await wakeUpLatencies(writer: store, reader: other, samples: wakeups)
        print(
            String(
                format: "wake-up, append start to delivery in another store: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples)",
                latencies.percentile(0.50), latencies.percentile(0.99), latencies.last ?? 0, latencies.count))
        other.stop()
        await otherClient.shutdown()
        store.stop()
        await client.shutdown()
    }

    /// Runs `concurrency` workers appending for `seconds`; returns how many appends committed.
    private func appendLoop(
        store: EventStore, concurrency: Int, seconds: Double, _ next: @escaping @Sendable (Int, Int) -> (String, [NewEvent])
    ) async throws -> Int {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var done = 0
                    while ContinuousClock.now < deadline {
                        let (stream, events) = next(worker, done)
                        try await store.append(stream: stream, expectedVersion: .noStream, events: events)
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// Milliseconds from the start of each append to the moment the reader's subscription hands the event out.
    private func wakeUpLatencies(writer: EventStore, reader: EventStore, samples: Int) async throws -> [Double] {
        let start = try await reader.headPosition()
        let stream = "bench-wakeup-\(UUID().uuidString)"
        let sent = Mutex<[Int64: ContinuousClock.Instant]>([:])
        let received = Mutex<[Double]>([])
        let subscription = reader.subscribe(after: start, pollInterval: .seconds(1))
        let consumer = Task {
            for try await event in subscription where event.streamID == stream {
                let now = ContinuousClock.now
                guard let began = sent.withLock({ $0[event.version] }) else { continue }
                let count = received.withLock { list -> Int in
                    list.append((now - began).milliseconds)
                    return list.count
                }
                if count == samples { return }
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        for version in 1...Int64(samples) {
            sent.withLock { $0[version] = .now }
            try await writer.append(
                stream: stream, expectedVersion: version == 1 ? .noStream : .exactly(version - 1),
                events: [NewEvent(type: "Wake", data: Array("{}".utf8))])
            // Space the samples out so each measures one wake-up, not a batch.
            try await Task.sleep(for: .milliseconds(5))
        }
        try await consumer.value
        return received.withLock { $0 }.sorted()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
}

extension [Double] {
    /// The value at `fraction` of a sorted array (nearest rank).
    func percentile(_ fraction: Double) -> Double {
        guard !isEmpty else { return .nan }
        return self[Swift.min(count - 1, Int((Double(count) * fraction).rounded(.up)) - 1)]
    }
}
