import Foundation
import Logging
import Synchronization
import TollgateTestSupport
import XCTest

@testable import TollgatePostgres

/// A database that hangs instead of failing: every connection has server-side time-outs, a caller that gives up leaves
/// the pool's line and the group commit's queue, and the log's readers wait only for transactions that append events.
final class HungDatabaseTests: XCTestCase {
    func testEveryConnectionHasTheSessionTimeOutsUnlessSomethingElseSetThem() async throws {
        let configuration = try await TestCluster.freshDatabase()
        func show(_ configuration: PostgresConfiguration) throws -> [String] {
            let connection = try PostgresConnection.connect(configuration)
            defer { connection.close() }
            return try ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"].map {
                try connection.query("SELECT current_setting($1)", [$0])[0].decode(String.self, 0)
            }
        }
        XCTAssertEqual(try show(configuration), ["30s", "10s", "30s"])
        // The connection string's own options win.
        let own = PostgresConfiguration(configuration.connectionString + " options='-c statement_timeout=5s'")
        XCTAssertEqual(try show(own), ["5s", "10s", "30s"])
        var none = configuration
        none.timeouts = .none
        XCTAssertEqual(try show(none), ["0", "0", "0"])
        // A pooled connection keeps them after a migration, which runs without them.
        let client = PostgresClient(configuration: try TestCluster.owner(of: configuration), options: .init(maxConnections: 1))
        try await Migrator(logger: Logger(label: "test")).migrate(client)
        let after = try await client.query("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
        XCTAssertEqual([try after[0].decode(String.self, 0), try after[0].decode(String.self, 1)], ["30s", "10s"])
        await client.shutdown()
    }

    /// A statement that waits for a lock another session holds fails at the lock time-out, and the connection is usable.
    func testAStatementBehindALockFailsAtTheLockTimeOut() async throws {
        var configuration = try await TestCluster.freshDatabase()
        configuration.timeouts.lock = .milliseconds(500)
        let store = EventStore(client: PostgresClient(configuration: configuration))
        let locker = try PostgresConnection.connect(try TestCluster.owner(of: configuration))
        defer { locker.close() }
        try locker.execute("BEGIN; LOCK TABLE tollgate.events IN ACCESS EXCLUSIVE MODE")
        let started = ContinuousClock.now
        do {
            try await store.append(stream: "s", expectedVersion: .noStream, events: [NewEvent(type: "E", data: Array("{}".utf8))])
            XCTFail("the append waited for the lock")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "55P03", "\(error)")
        }
        XCTAssertLessThan(started.duration(to: .now), .seconds(3))
        try locker.execute("ROLLBACK")
        try await store.append(stream: "s", expectedVersion: .noStream, events: [NewEvent(type: "E", data: Array("{}".utf8))])
        await store.client.shutdown()
    }

    /// A caller waiting for a connection whose task is cancelled leaves the line at once (not at the wait time-out), and
    /// its body never runs.
    func testACancelledWaiterLeavesThePoolsLineAndNeverRuns() async throws {
        let client = PostgresClient(
            configuration: try await TestCluster.freshDatabase(migrated: false), options: .init(maxConnections: 1, waitTimeout: .seconds(30)))
        let ran = Mutex(false)
        let holder = Task { try await client.withConnection { connection in try connection.query("SELECT pg_sleep(1.5)") } }
        try await Task.sleep(for: .milliseconds(200))
        let waiter = Task { try await client.withConnection { _ in ran.withLock { $0 = true } } }
        try await Task.sleep(for: .milliseconds(100))
        let cancelled = ContinuousClock.now
        waiter.cancel()
        let result = await waiter.result
        XCTAssertLessThan(cancelled.duration(to: .now), .milliseconds(500))
        XCTAssertThrowsError(try result.get()) { XCTAssertTrue($0 is CancellationError, "\($0)") }
        _ = try await holder.value
        try await Task.sleep(for: .milliseconds(100))
        XCTAssertFalse(ran.withLock { $0 })
        await client.shutdown()
    }

    /// A request whose task is cancelled while it waits for its group is never committed.
    func testACancelledRequestIsTakenOutOfTheGroupCommitQueue() async throws {
        let committed = Mutex<[[Int]]>([])
        let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let queue = GroupCommitQueue<Int, Int>(maxGroupSize: 8, maxConcurrentGroups: 1) { group in
            if group == [1] { await withCheckedContinuation { continuation in gate.withLock { $0 = continuation } } }
            committed.withLock { $0.append(group) }
            return group.map { .success($0) }
        }
        let first = Task { try await queue.submit(1) }
        while gate.withLock({ $0 == nil }) { try await Task.sleep(for: .milliseconds(5)) }
        let second = Task { try await queue.submit(2) }
        let third = Task { try await queue.submit(3) }
        while queue.queueState.queued < 2 { try await Task.sleep(for: .milliseconds(5)) }
        second.cancel()
        let result = await second.result
        XCTAssertThrowsError(try result.get()) { XCTAssertTrue($0 is CancellationError, "\($0)") }
        gate.withLock { $0?.resume() }
        let firstValue = try await first.value
        let thirdValue = try await third.value
        XCTAssertEqual([firstValue, thirdValue], [1, 3])
        XCTAssertEqual(committed.withLock { $0 }, [[1], [3]])
    }

    /// `BEGIN; SELECT pg_current_xact_id();` left open in another session (which never appends) holds no reader back: the
    /// events committed after it are read at once. Before migration 0014 the horizon was the cluster's oldest transaction.
    func testAnIdleTransactionElsewhereHoldsNoReaderBack() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        let idle = try PostgresConnection.connect(try TestCluster.owner(of: configuration))
        defer { idle.close() }
        try idle.execute("BEGIN")
        _ = try idle.query("SELECT pg_current_xact_id()")
        try await store.append(stream: "after-idle", expectedVersion: .noStream, events: [NewEvent(type: "E", data: Array("{}".utf8))])
        let read = try await store.readAll(after: .start)
        XCTAssertEqual(read.map(\.streamID), ["after-idle"])
        // That transaction cannot append later and be skipped: it wrote (took an id) before taking the append lock.
        XCTAssertThrowsError(
            try EventStore.append(
                [AppendRequest(stream: "late", expected: .noStream, events: [NewEvent(type: "E", data: Array("{}".utf8))])], on: idle)
        ) { XCTAssertEqual(($0 as? PostgresError)?.sqlState, "40001", "\($0)") }
        try idle.execute("ROLLBACK")
        await store.client.shutdown()
    }

    /// The runtime role appends only through the functions that take the append lock first: the unlocked ones they wrap
    /// (migration 0014) are not its to call.
    func testTheRuntimeRoleCannotCallTheUnlockedAppends() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        for sql in [
            "SELECT * FROM tollgate.append_events_unlocked(ARRAY['s'], ARRAY[0::bigint], ARRAY[1], ARRAY['E'], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])",
            "SELECT * FROM tollgate.reserve_and_append_unlocked('{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', ARRAY['s'], ARRAY['E'], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])",
            "SELECT tollgate.take_append_lock()",
        ] {
            XCTAssertThrowsError(try connection.execute(sql), sql) { XCTAssertEqual(($0 as? PostgresError)?.sqlState, "42501", "\($0)") }
        }
        XCTAssertEqual(
            try connection.query(
                "SELECT * FROM tollgate.append_events(ARRAY['s'], ARRAY[0::bigint], ARRAY[1], ARRAY['E'], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])"
            ).rowCount, 1)
    }

    /// An open transaction that appended holds the readers back (its event may commit), and is named: its backend,
    /// role and application name.
    func testAnOpenAppendingTransactionHoldsTheReadersBackAndIsNamed() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        var named = configuration
        named.applicationName = "stuck-appender"
        let stuck = try PostgresConnection.connect(named)
        defer { stuck.close() }
        try await store.append(stream: "before", expectedVersion: .noStream, events: [NewEvent(type: "E", data: Array("{}".utf8))])
        try stuck.execute("BEGIN")
        _ = try EventStore.append(
            [AppendRequest(stream: "open", expected: .noStream, events: [NewEvent(type: "E", data: Array("{}".utf8))])], on: stuck)
        try await store.append(stream: "after", expectedVersion: .noStream, events: [NewEvent(type: "E", data: Array("{}".utf8))])
        let early = try await store.readAll(after: .start)
        XCTAssertEqual(early.map(\.streamID), ["before"])
        let holder = try await store.client.withConnection { try ProjectionRunner.horizonHolder(on: $0) }
        XCTAssertEqual(holder?.pid, stuck.backendPID)
        XCTAssertEqual(holder?.applicationName, "stuck-appender")
        XCTAssertEqual(holder?.state, "idle in transaction")
        try stuck.execute("COMMIT")
        let all = try await store.readAll(after: .start)
        XCTAssertEqual(all.map(\.streamID), ["before", "open", "after"])
        let none = try await store.client.withConnection { try ProjectionRunner.horizonHolder(on: $0) }
        XCTAssertNil(none)
        await store.client.shutdown()
    }

    /// The projector's runner reports an appending transaction that holds the log back: the held seconds climb (the
    /// metric's source), a warning past 5 s names its backend and application, and a notice says when it let go.
    func testTheRunnerNamesAnAppendingTransactionThatHoldsTheLogBack() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let lines = CapturedLines()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(lines: lines) }
        let store = EventStore(client: PostgresClient(configuration: configuration))
        let runner = ProjectionRunner(store: store, projections: [StreamSummaryProjection()], logger: logger)
        let held = Mutex(0.0)
        runner.observeHorizon { seconds in held.withLock { $0 = max($0, seconds) } }
        var named = configuration
        named.applicationName = "stuck-appender"
        let stuck = try PostgresConnection.connect(named)
        defer { stuck.close() }
        try stuck.execute("BEGIN")
        _ = try EventStore.append(
            [AppendRequest(stream: "open", expected: .noStream, events: [NewEvent(type: "E", data: Array("{}".utf8))])], on: stuck)
        let running = Task { try await runner.run() }
        defer { running.cancel() }
        let deadline = ContinuousClock.now + .seconds(10)
        func line(_ text: String) -> String? { lines.value.withLock { $0.first { $0.contains(text) } } }
        while line("holds its readers back") == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let warning = try XCTUnwrap(line("holds its readers back"), "no warning within 10 s")
        XCTAssertTrue(warning.contains("application_name=stuck-appender"), warning)
        XCTAssertTrue(warning.contains("pid=\(stuck.backendPID)"), warning)
        XCTAssertGreaterThanOrEqual(held.withLock { $0 }, 5)
        try stuck.execute("COMMIT")
        let released = ContinuousClock.now + .seconds(5)
        while line("no longer held back") == nil, ContinuousClock.now < released { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertNotNil(line("no longer held back"))
        running.cancel()
        await store.client.shutdown()
    }
}

private final class CapturedLines: Sendable {
    let value = Mutex<[String]>([])
}

/// Keeps every log line as text: its message and metadata.
private struct CapturingLogHandler: LogHandler {
    let lines: CapturedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt
    ) {
        let fields = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.value.withLock { $0.append("\(level) \(message) \(fields)") }
    }
}
