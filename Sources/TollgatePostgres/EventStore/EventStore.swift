import Foundation
import Logging
import Synchronization

/// The append-only event log in PostgreSQL: append with optimistic concurrency, read a stream, read the whole
/// log in commit-safe global order, and follow it as it grows.
///
/// ```swift
/// let store = EventStore(client: client)
/// try await store.append(stream: "call-\(id)", expectedVersion: .noStream,
///                        events: [NewEvent(type: "CallDecided", data: Array(json.utf8))])
/// for try await event in store.subscribe(after: checkpoint) { ... }
/// ```
///
/// Appends from concurrent callers are grouped into one transaction each time the database is busy (group
/// commit): every caller still gets its own all-or-nothing append and its own conflict error, and is answered
/// only after the commit is durable. After each commit the store sends one `NOTIFY tollgate_events` from a
/// separate short transaction (coalesced, never inside the append), so followers in other processes wake within
/// milliseconds; followers also poll, so a lost notification costs latency, never an event.
public final class EventStore: Sendable {
    /// The channel followers listen on.
    public static let channel = "tollgate_events"

    public struct Options: Sendable {
        /// Appends grouped into one transaction at most.
        public var maxGroupSize: Int = 32
        /// Group transactions in flight at once. One (classic group commit: appends that arrive while a commit is under
        /// way form the next group) gave the most appends per second and the lowest latency from 300 calls/s to
        /// saturation on a 2-core machine: parallel groups were smaller, and PostgreSQL spent its CPU on their commits
        /// (ops/bench/proxy: 1,600 to 2,300 calls/s at saturation, 0.5 to 0.2 commits per call).
        public var maxConcurrentGroups: Int = 1
        /// Events in one append at most.
        public var maxEventsPerAppend: Int = 1000
        /// Bytes of JSON data in one event at most.
        public var maxEventBytes: Int = 1 << 20
        public init() {}
    }

    public let client: PostgresClient
    public let options: Options
    let logger: Logger
    let listener: PostgresListener
    private let notifier: CommitNotifier
    private let queue: GroupCommitQueue<AppendRequest, AppendOutcome>

    public init(client: PostgresClient, options: Options = Options(), logger: Logger = Logger(label: "tollgate.events")) {
        self.client = client
        self.options = options
        self.logger = logger
        let listener = PostgresListener(configuration: client.configuration, channels: [Self.channel], logger: logger)
        let notifier = CommitNotifier(client: client, logger: logger)
        self.listener = listener
        self.notifier = notifier
        self.queue = GroupCommitQueue(maxGroupSize: options.maxGroupSize, maxConcurrentGroups: options.maxConcurrentGroups) { group in
            await Self.commit(group, client: client) { notify in
                listener.signal.bump()
                if notify { notifier.commitHappened() }
            }
        }
    }

    /// Signals every time the log may have grown: a commit in this process, or a notification from another.
    /// Starts the listening connection on first use.
    public var changes: ChangeSignal {
        listener.start()
        return listener.signal
    }

    /// Stops the listening connection. The client is the caller's to shut down.
    public func stop() {
        listener.stop()
    }

    // MARK: - Appending

    /// Appends `events` to `stream` as one all-or-nothing batch, if the stream is at `expectedVersion`.
    ///
    /// - Throws: `EventStoreError.wrongExpectedVersion` when another writer got there first (exactly one of two
    ///   writers at the same expected version wins); `EventStoreError.invalidAppend` for a malformed append;
    ///   `PostgresError` when the database cannot be reached (then the append may or may not have committed
    ///   if the connection broke during the commit: re-read the stream to know).
    /// - Parameter notify: send `NOTIFY` after the commit so followers in other processes wake at once. `NOTIFY` takes
    ///   a global lock at commit; high-rate appends that nobody waits on (the gateway's call events) pass `false`,
    ///   and other processes' followers pick them up on their next poll. Followers in this process always wake.
    /// - Parameter linger: how long the append may wait for company before it is committed alone. An append whose
    ///   caller is not in a hurry (a call's outcome, recorded after the agent has its answer) then rides in the group
    ///   commit of the next append instead of a transaction of its own: at a few hundred calls a second, one commit per
    ///   call instead of two. `nil` starts a commit at once when none is running.
    @discardableResult
    public func append(
        stream: String, expectedVersion: ExpectedVersion, events: [NewEvent], notify: Bool = true, linger: Duration? = nil
    ) async throws -> AppendResult {
        try validate(stream: stream, events: events)
        let request = AppendRequest(stream: stream, expected: expectedVersion, events: events, notify: notify)
        while true {
            let outcome = try await queue.submit(request, linger: linger)
            switch outcome {
            case .appended(let result):
                return result
            case .conflict(let actual):
                // With `.any`, a conflict only means a concurrent writer took the next version: try again.
                if case .any = expectedVersion { continue }
                throw EventStoreError.wrongExpectedVersion(stream: stream, expected: expectedVersion, actual: actual)
            }
        }
    }

    /// Appends `events` to `stream` on `connection`, inside the caller's transaction, so the events commit (or
    /// roll back) together with the caller's other writes: a decision with its counter reservations. Call
    /// ``noteCommit()`` once the transaction has committed, so followers wake at once.
    @discardableResult
    public func append(stream: String, expectedVersion: ExpectedVersion, events: [NewEvent], on connection: PostgresConnection) throws -> AppendResult
    {
        try validate(stream: stream, events: events)
        let outcome = try Self.append([AppendRequest(stream: stream, expected: expectedVersion, events: events)], on: connection)[0]
        switch outcome {
        case .appended(let result):
            return result
        case .conflict(let actual):
            throw EventStoreError.wrongExpectedVersion(stream: stream, expected: expectedVersion, actual: actual)
        }
    }

    /// Appends several streams' batches on `connection`, inside the caller's transaction, with one statement: each
    /// all or nothing as with `append(stream:expectedVersion:events:on:)`, and the results in the same order.
    ///
    /// - Throws: `EventStoreError.wrongExpectedVersion` for the first stream not at its expected version (the caller's
    ///   transaction must roll back: the others' events are written in it).
    @discardableResult
    public func append(
        _ batches: [(stream: String, expectedVersion: ExpectedVersion, events: [NewEvent])], on connection: PostgresConnection
    ) throws -> [AppendResult] {
        for batch in batches { try validate(stream: batch.stream, events: batch.events) }
        let requests = batches.map { AppendRequest(stream: $0.stream, expected: $0.expectedVersion, events: $0.events) }
        return try zip(batches, Self.append(requests, on: connection)).map { batch, outcome in
            switch outcome {
            case .appended(let result): return result
            case .conflict(let actual):
                throw EventStoreError.wrongExpectedVersion(stream: batch.stream, expected: batch.expectedVersion, actual: actual)
            }
        }
    }

    /// Tells followers in this process (and, with `notify`, in others) that a transaction holding appends has committed.
    public func noteCommit(notify: Bool = true) {
        listener.signal.bump()
        if notify { notifier.commitHappened() }
    }

    /// Refuses an append that breaks the store's limits (stream id and type lengths, event count and size, NUL bytes)
    /// with `EventStoreError.invalidAppend`: every append is checked so, and so must be one written by other means.
    public func validate(stream: String, events: [NewEvent]) throws {
        func refuse(_ reason: String) -> EventStoreError { .invalidAppend(stream: String(stream.prefix(200)), reason: reason) }
        guard (1...200).contains(stream.count) else { throw refuse("a stream id has 1 to 200 characters") }
        guard !events.isEmpty else { throw refuse("an append needs at least one event") }
        guard events.count <= options.maxEventsPerAppend else {
            throw refuse("\(events.count) events in one append; at most \(options.maxEventsPerAppend)")
        }
        for (index, event) in events.enumerated() {
            guard (1...200).contains(event.type.count) else { throw refuse("event \(index): a type has 1 to 200 characters") }
            guard event.data.count <= options.maxEventBytes, event.metadata.count <= options.maxEventBytes else {
                throw refuse("event \(index) is larger than \(options.maxEventBytes) bytes")
            }
            guard !event.data.contains(0), !event.metadata.contains(0), !stream.utf8.contains(0), !event.type.utf8.contains(0) else {
                throw refuse("event \(index) contains a NUL byte")
            }
        }
    }

    /// Appends waiting for a group commit, and group commits running (for tests).
    var queueState: (queued: Int, activeGroups: Int) { queue.queueState }

    /// Commits one group of appends in one transaction; `committed(notify)` runs after a commit that appended something.
    /// Returns one result per request, in the group's order.
    private static func commit(
        _ group: [AppendRequest], client: PostgresClient, attempt: Int = 1, committed: @escaping @Sendable (_ notify: Bool) -> Void
    ) async -> [Result<AppendOutcome, any Error>] {
        // One lock order for every group, so two groups touching the same streams cannot deadlock.
        let order = group.indices.sorted { group[$0].stream < group[$1].stream }
        let ordered = order.map { group[$0] }
        do {
            let outcomes = try await client.withConnection { connection in
                try Self.canAppendAsSingles(ordered) ? Self.appendSingles(ordered, on: connection) : Self.append(ordered, on: connection)
            }
            var results = [Result<AppendOutcome, any Error>](repeating: .failure(GroupCommitError.noResult), count: group.count)
            for (position, index) in order.enumerated() { results[index] = .success(outcomes[position]) }
            if outcomes.contains(where: { if case .appended = $0 { return true } else { return false } }) {
                committed(ordered.contains(where: \.notify))
            }
            return results
        } catch let error as PostgresError where group.count > 1 && (isBadData(error) || isTransient(error)) {
            // One append's data was bad, or the group lost a race that a fresh transaction wins: commit each
            // alone, so only a culprit fails.
            var results: [Result<AppendOutcome, any Error>] = []
            for request in group { results += await commit([request], client: client, committed: committed) }
            return results
        } catch let error as PostgresError where isTransient(error) && attempt < 5 {
            return await commit(group, client: client, attempt: attempt + 1, committed: committed)
        } catch let error as PostgresError where isBadData(error) {
            let message: String
            if case .server(let server) = error { message = server.message } else { message = "\(error)" }
            let reason = "the database refused it (SQLSTATE \(error.sqlState ?? "?")): \(message)"
            return [.failure(EventStoreError.invalidAppend(stream: group[0].stream, reason: reason))]
        } catch {
            return group.map { _ in .failure(error) }
        }
    }

    /// Data exceptions and integrity violations: something in one append's content.
    private static func isBadData(_ error: PostgresError) -> Bool {
        guard let state = error.sqlState else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23")
    }

    /// Serialization failures and deadlocks: a new transaction succeeds.
    private static func isTransient(_ error: PostgresError) -> Bool {
        error.sqlState == "40001" || error.sqlState == "40P01"
    }

    /// Appends several streams' batches in one statement on `connection` (one transaction unless the caller
    /// opened one). Every returned outcome is in the order of `requests`.
    static func append(_ requests: [AppendRequest], on connection: PostgresConnection) throws -> [AppendOutcome] {
        let columns = AppendColumns(requests)
        let result = try connection.query(
            """
            SELECT item, appended, stream_version, last_position
            FROM tollgate.append_events($1::text[], $2::bigint[], $3::int[], $4::text[], $5::jsonb[], $6::jsonb[])
            """,
            [
                PostgresArray(columns.streams), PostgresArray(columns.expected), PostgresArray(columns.counts), PostgresArray(columns.types),
                PostgresArray(columns.data), PostgresArray(columns.metadata),
            ])
        var outcomes = [AppendOutcome](repeating: .conflict(actual: 0), count: requests.count)
        for row in result.rows {
            let item = try row.decode(Int.self, 0) - 1
            let version = try row.decode(Int64.self, 2)
            if try row.decode(Bool.self, 1) {
                outcomes[item] = .appended(AppendResult(streamVersion: version, lastPosition: try row.decode(Int64.self, 3)))
            } else {
                outcomes[item] = .conflict(actual: version)
            }
        }
        return outcomes
    }

    /// Whether `appendSingles` can take `requests`: one event each, to distinct streams, each at a known version.
    static func canAppendAsSingles(_ requests: [AppendRequest]) -> Bool {
        guard requests.allSatisfy({ $0.events.count == 1 && $0.expected.parameter != nil }) else { return false }
        return requests.count == 1 || Set(requests.map(\.stream)).count == requests.count
    }

    /// Appends one event to each of several distinct streams, each at a known version, as one transaction on
    /// `connection` (which must not be in one): the shape of the gateway's call events, with `tollgate.append_singles`
    /// (migration 0009), which does less work than `append_events`. Each item that was not appended is answered with its
    /// stream's committed version, read after the append.
    static func appendSingles(_ requests: [AppendRequest], on connection: PostgresConnection) throws -> [AppendOutcome] {
        let columns = AppendColumns(requests)
        let result = try connection.query(
            "SELECT item, item_position FROM tollgate.append_singles($1::text[], $2::bigint[], $3::text[], $4::jsonb[], $5::jsonb[])",
            [
                PostgresArray(columns.streams), PostgresArray(columns.expected), PostgresArray(columns.types), PostgresArray(columns.data),
                PostgresArray(columns.metadata),
            ])
        guard result.rowCount == requests.count else {
            throw PostgresError.client(message: "the append returned \(result.rowCount) rows for \(requests.count) events")
        }
        var outcomes = [AppendOutcome](repeating: .conflict(actual: 0), count: requests.count)
        var refused: [Int] = []
        for row in result.rows {
            let index = try row.decode(Int.self, 0) - 1
            guard outcomes.indices.contains(index), let expected = requests[index].expected.parameter else {
                throw PostgresError.client(message: "the append returned item \(index + 1) of \(requests.count)")
            }
            if let position = try row.decode(Int64?.self, 1) {
                outcomes[index] = .appended(AppendResult(streamVersion: expected + 1, lastPosition: position))
            } else {
                refused.append(index)
            }
        }
        if !refused.isEmpty {
            let versions = try connection.query(
                """
                SELECT s.stream_id, (SELECT coalesce(max(e.version), 0) FROM tollgate.events e WHERE e.stream_id = s.stream_id)
                FROM unnest($1::text[]) AS s(stream_id)
                """,
                [PostgresArray(refused.map { requests[$0].stream })])
            var actual: [String: Int64] = [:]
            for row in versions.rows { actual[try row.decode(String.self, 0)] = try row.decode(Int64.self, 1) }
            for index in refused { outcomes[index] = .conflict(actual: actual[requests[index].stream] ?? 0) }
        }
        return outcomes
    }

    // MARK: - Reading

    /// The events of one stream from `version` on, in order.
    public func read(stream: String, fromVersion version: Int64 = 1) async throws -> [RecordedEvent] {
        try await client.withConnection { connection in
            try Self.decodeEvents(
                connection.query(
                    "SELECT \(Self.columns) FROM tollgate.events WHERE stream_id = $1 AND version >= $2 ORDER BY version",
                    [stream, version]))
        }
    }

    /// Up to `limit` events after `position`, in global order, never skipping one whose transaction commits
    /// late: only events from transactions older than every appending transaction still running are returned
    /// (see ``horizon(on:)``).
    public func readAll(after position: LogPosition, limit: Int = 1000) async throws -> [RecordedEvent] {
        try await client.withConnection { connection in try Self.readAll(after: position, limit: limit, on: connection) }
    }

    /// `readAll` on a connection the caller holds (inside a projection's transaction, say).
    public static func readAll(after position: LogPosition, limit: Int, on connection: PostgresConnection) throws -> [RecordedEvent] {
        let horizon = try horizon(on: connection)
        return try decodeEvents(
            connection.query(
                """
                SELECT \(columns) FROM tollgate.events e
                WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
                  AND transaction_id < $4::text::xid8
                ORDER BY e.transaction_id, e.position
                LIMIT $3
                """,
                [String(position.transactionID), position.position, max(1, limit), horizon]))
    }

    /// Where the log is readable up to (exclusive): the least transaction id among the transactions that hold the log's
    /// append lock (every appending transaction does, from before it has an id: migration 0014), or the next transaction
    /// id when none does; as text. Read in a statement of its own, before the statement that reads the rows: that
    /// statement's later snapshot sees every transaction below it that ended.
    ///
    /// An open transaction that never appended (an idle `BEGIN; SELECT pg_current_xact_id();` in another session, a
    /// report) holds nothing back; an appending one holds the log back until it ends (its time-outs bound that).
    public static func horizon(on connection: PostgresConnection) throws -> String {
        try connection.query(horizonSQL)[0].decode(String.self, 0)
    }

    /// `horizon(on:)`'s statement. The 32-bit ids in `pg_locks` are widened to 64 bits against the next id, which they
    /// precede by less than 2^31. Two reads of `pg_locks`: a holder seen in the first that ended before the second ended
    /// before the rows are read, and one that got its id after the snapshot's xmax has a greater id.
    static let horizonSQL = """
        WITH s AS (SELECT pg_snapshot_xmax(pg_current_snapshot()) AS next),
        holders AS (
            SELECT k.virtualtransaction FROM pg_locks k
            WHERE k.locktype = 'advisory' AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND k.classid = \(PostgresConnection.appendLockKey.0) AND k.objid = \(PostgresConnection.appendLockKey.1) AND k.objsubid = 2
              AND k.pid IS DISTINCT FROM pg_backend_pid()
        ),
        ids AS (
            SELECT x.transactionid::text::bigint AS low FROM pg_locks x
            WHERE x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
              AND x.virtualtransaction IN (SELECT virtualtransaction FROM holders)
        )
        SELECT least(s.next, (
            SELECT min((n.v - ((n.v % 4294967296 - ids.low + 4294967296) % 4294967296))::text::xid8)
            FROM ids, (SELECT s.next::text::bigint AS v) n
        ))::text FROM s
        """

    /// Up to `limit` readable events after `position` of the given `types` (all when `nil`), in global order, with
    /// their data and metadata or without them (`{}`), and how far the log was scanned: the caller's next position
    /// (past events of other types, which were skipped unread). `nil` when nothing lies beyond `position`.
    public static func readAll(
        after position: LogPosition, limit: Int, types: Set<String>?, withData: Bool, on connection: PostgresConnection
    ) throws -> (events: [RecordedEvent], scannedTo: LogPosition?) {
        if types == nil, withData {
            let events = try readAll(after: position, limit: limit, on: connection)
            return (events, events.last?.logPosition)
        }
        // The head first: every event at or before it has committed (its transaction is older than any running one),
        // so the filtered read below, in a later snapshot, sees all of them.
        guard let bound = try readableHead(on: connection), position < bound else { return ([], nil) }
        let columns =
            withData
            ? Self.columns
            : "position, transaction_id::text, stream_id, version, type, '{}', '{}', (extract(epoch FROM recorded_at) * 1000000)::bigint"
        let events = try decodeEvents(
            connection.query(
                """
                SELECT \(columns) FROM tollgate.events e
                WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
                  AND (transaction_id, position) <= ($3::text::xid8, $4::bigint)
                  AND ($5::text[] IS NULL OR type = ANY($5::text[]))
                ORDER BY e.transaction_id, e.position
                LIMIT $6
                """,
                [
                    String(position.transactionID), position.position, String(bound.transactionID), bound.position,
                    types.map { PostgresArray($0.sorted()) }, max(1, limit),
                ]))
        return (events, events.count < max(1, limit) ? bound : events.last?.logPosition)
    }

    /// The last readable event's position (every event at or before it has committed), or `nil` for an empty log.
    public static func readableHead(on connection: PostgresConnection) throws -> LogPosition? {
        let horizon = try horizon(on: connection)
        let head = try connection.query(
            """
            SELECT transaction_id::text, position FROM tollgate.events e
            WHERE transaction_id < $1::text::xid8 ORDER BY e.transaction_id DESC, e.position DESC LIMIT 1
            """, [horizon])
        guard head.rowCount == 1 else { return nil }
        return LogPosition(transactionID: try head[0].decode(UInt64.self, 0), position: try head[0].decode(Int64.self, 1))
    }

    /// The latest `limit` readable events (of one stream, or of the whole log), oldest first.
    public func readLatest(limit: Int, stream: String? = nil) async throws -> [RecordedEvent] {
        guard limit > 0 else { return [] }
        return try await client.withConnection { connection in
            let horizon = try Self.horizon(on: connection)
            return try Self.decodeEvents(
                connection.query(
                    """
                    SELECT \(Self.columns) FROM tollgate.events e
                    WHERE transaction_id < $3::text::xid8 AND ($1::text IS NULL OR stream_id = $1)
                    ORDER BY e.transaction_id DESC, e.position DESC
                    LIMIT $2
                    """, [stream, limit, horizon])
            ).reversed()
        }
    }

    /// The position of the last readable event, or `.start` for an empty log: where to start following
    /// only what comes next.
    public func headPosition() async throws -> LogPosition {
        try await client.withConnection { connection in try Self.readableHead(on: connection) ?? .start }
    }

    /// Follows the log from `position`: every event after it exactly once, in global order, then each new one
    /// as it commits. Ends when the consuming task is cancelled.
    public func subscribe(after position: LogPosition, batchSize: Int = 1000, pollInterval: Duration = .milliseconds(500)) -> EventSubscription {
        EventSubscription(store: self, start: position, batchSize: batchSize, pollInterval: pollInterval)
    }

    /// Selected as text for decoding; queries must sort by the qualified `e.transaction_id`, because a bare
    /// `ORDER BY transaction_id` would name this text output column and sort "1003" before "921".
    static let columns =
        "position, transaction_id::text, stream_id, version, type, data::text, metadata::text, "
        + "(extract(epoch FROM recorded_at) * 1000000)::bigint"

    static func decodeEvents(_ result: PostgresResult) throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        events.reserveCapacity(result.rowCount)
        for row in result.rows {
            events.append(
                RecordedEvent(
                    position: try row.decode(Int64.self, 0),
                    transactionID: try row.decode(UInt64.self, 1),
                    streamID: try row.decode(String.self, 2),
                    version: try row.decode(Int64.self, 3),
                    type: try row.decode(String.self, 4),
                    data: try row.decode(JSONText.self, 5).bytes,
                    metadata: try row.decode(JSONText.self, 6).bytes,
                    recordedAt: Date(timeIntervalSince1970: Double(try row.decode(Int64.self, 7)) / 1_000_000)))
        }
        return events
    }
}

// MARK: - Group commit state

struct AppendRequest: Sendable {
    var stream: String
    var expected: ExpectedVersion
    var events: [NewEvent]
    var notify = true
}

/// A group's appends as the array parameters of `append_events` and `append_singles`: one entry per request in
/// `streams`, `expected` and `counts`, one per event in `types`, `data` and `metadata`.
struct AppendColumns {
    var streams: [String?] = []
    var expected: [String?] = []
    var counts: [String?] = []
    var types: [String?] = []
    var data: [String?] = []
    var metadata: [String?] = []

    init(_ requests: [AppendRequest]) {
        for request in requests {
            streams.append(request.stream)
            expected.append(request.expected.parameter.map { String($0) })
            counts.append(String(request.events.count))
            for event in request.events {
                types.append(event.type)
                data.append(event.dataText)
                metadata.append(event.metadataText)
            }
        }
    }
}

enum AppendOutcome: Sendable {
    case appended(AppendResult)
    case conflict(actual: Int64)
}

/// Sends `NOTIFY tollgate_events` after commits, at most one at a time: commits that land while one is in
/// flight are covered by one more after it. Keeps NOTIFY (and the global lock it takes at commit) out of the
/// append transactions.
private final class CommitNotifier: Sendable {
    private let client: PostgresClient
    private let logger: Logger
    private let state = Mutex((inFlight: false, again: false))

    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    func commitHappened() {
        let start = state.withLock { state -> Bool in
            if state.inFlight {
                state.again = true
                return false
            }
            state.inFlight = true
            return true
        }
        guard start else { return }
        Task {
            while true {
                do {
                    try await client.query("SELECT pg_notify($1, '')", [EventStore.channel])
                } catch {
                    logger.debug("could not send the commit notification; followers will poll", metadata: ["error": "\(error)"])
                }
                let again = state.withLock { state -> Bool in
                    if state.again {
                        state.again = false
                        return true
                    }
                    state.inFlight = false
                    return false
                }
                if !again { return }
            }
        }
    }
}
