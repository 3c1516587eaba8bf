import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

@testable import TollgateServer

/// Nothing the log should hold is dropped by a database outage: a call answered while PostgreSQL is stopped has its
/// `ToolCallCompleted` in the log once PostgreSQL is back, exactly once (`OutcomeBacklog`).
final class OutageOutcomeTests: XCTestCase {
    static let policy = """
        version: "1"
        default: allow
        """

    /// A PostgreSQL cluster of the test's own, which it stops and starts. Durable settings (fsync and synchronous
    /// commit on), so a commit acknowledged before `pg_ctl stop -m immediate` is still there after it.
    struct OwnCluster {
        var cluster: EmbeddedPostgres
        /// The runtime role's settings, as a gateway runs.
        var runtime: PostgresConfiguration

        static func start() async throws -> OwnCluster {
            let directory = URL(fileURLWithPath: "/tmp/tollgate-outage-\(getpid())-\(UUID().uuidString.prefix(6).lowercased())")
            let cluster = EmbeddedPostgres(dataDirectory: directory, logger: Logger(label: "outage-cluster"))
            let owner = try cluster.start()
            let client = PostgresClient(configuration: owner, options: .init(maxConnections: 1))
            do {
                let migrator = Migrator(logger: Logger(label: "test"))
                try await migrator.migrate(client)
                try await migrator.grantRuntime(cluster.settings.runtimeUser, on: client)
            } catch {
                await client.shutdown()
                throw error
            }
            await client.shutdown()
            return OwnCluster(cluster: cluster, runtime: cluster.runtimeConfiguration)
        }

        func remove() {
            try? cluster.stop(immediate: true)
            try? FileManager.default.removeItem(at: cluster.dataDirectory)
        }
    }

    /// A gateway on `cluster` in front of the fixture server, whose ledger is `ledger`.
    func gateway(on cluster: OwnCluster, ledger: URL) async throws -> GatewayUnderTest {
        try await GatewayUnderTest.start(
            servers: [
                "fx": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path],
                    policy: Self.policy)
            ],
            database: cluster.runtime)
    }

    /// `count` agents, each calling `slow` for `seconds` once (after listing the tools, so the client asks nothing more).
    func slowCalls(_ gateway: GatewayUnderTest, count: Int, seconds: Double) throws -> [Task<Peers.ClientRun, any Error>] {
        let python = try Peers.python2()
        let url = gateway.url("fx")
        let key = gateway.key
        let steps: JSONValue = [
            ["op": "list_tools"],
            ["op": "call_tool", "name": "slow", "arguments": ["seconds": .number(seconds)], "timeout": 60],
        ]
        return (0..<count).map { _ in Task.detached { try Peers.runClient(python: python, url: url, key: key, steps: steps) } }
    }

    /// Waits until the fixture's ledger holds `count` calls (each reached the tool, so its decision is committed).
    func awaitLedger(_ ledger: URL, count: Int, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count >= count { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTFail("the fixture's ledger does not show \(count) calls")
    }

    func completions(_ gateway: GatewayUnderTest) async throws -> [ToolCallCompleted] {
        try await gateway.events(type: ToolCallCompleted.type).map { try EventCoding.decode(ToolCallCompleted.self, from: $0.data) }
    }

    func replay(_ database: PostgresConfiguration) throws -> [JSONValue] {
        let run = try RunningProgram.run(
            RunningProgram.tollgateBinary,
            ["audit", "replay", "--format", "jsonl", "--database", database.connectionString, "--log-level", "warning"],
            timeout: .seconds(60))
        XCTAssertEqual(run.status, 0, run.stderr)
        return run.stdout.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
    }

    func metric(_ gateway: GatewayUnderTest, _ line: String) -> Bool {
        gateway.api("GET", "/metrics", as: nil).text.split(separator: "\n").contains { $0 == line }
    }

    func testACallAnsweredWhilePostgresIsStoppedHasItsOutcomeOnceItIsBack() async throws {
        let cluster = try await OwnCluster.start()
        defer { cluster.remove() }
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("outage-ledger-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: ledger) }
        let gateway = try await gateway(on: cluster, ledger: ledger)
        defer { gateway.stop() }

        let calls = 2
        let runs = try slowCalls(gateway, count: calls, seconds: 10)
        try await awaitLedger(ledger, count: calls)
        let decided = try await gateway.events(type: ToolCallDecided.type).map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        XCTAssertEqual(decided.filter { $0.tool == "slow" }.count, calls)
        let early = try await completions(gateway)
        XCTAssertEqual(early.count, 0, "every call is still running when PostgreSQL stops (the agents started too far apart)")
        let stopped = ContinuousClock.now
        try cluster.cluster.stop(immediate: true)
        print("PostgreSQL stopped (-m immediate) in \(stopped.duration(to: .now))")

        // Each agent gets its success while the database is away.
        for run in runs {
            let result = try await run.value
            let call = try XCTUnwrap(result.steps.last, result.description)
            XCTAssertEqual(call["ok"]?.boolValue, true, result.description)
            XCTAssertEqual(call["result"]?["isError"]?.boolValue, false, result.description)
        }
        // Kept, not dropped: the gateway says so and counts them.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, !metric(gateway, "tollgate_outcomes_waiting \(calls).0") {
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertTrue(metric(gateway, "tollgate_outcomes_waiting \(calls).0"), gateway.api("GET", "/metrics", as: nil).text)
        XCTAssertTrue(gateway.log.contains("keeping them in memory"), gateway.log)
        try await Task.sleep(for: .seconds(2))

        try cluster.cluster.start()
        let back = ContinuousClock.now
        var written: [ToolCallCompleted] = []
        while back.duration(to: .now) < .seconds(30) {
            written = (try? await completions(gateway)) ?? []
            if written.count >= calls { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        let after = back.duration(to: .now)
        print("outcomes written \(after) after PostgreSQL was back (\(written.count) of \(calls))")
        XCTAssertEqual(written.count, calls, gateway.log)
        XCTAssertLessThan(after, .seconds(10), "the backoff is at most 5 s")

        // Exactly one outcome per call, and each the real one; `audit replay` agrees.
        try await Task.sleep(for: .seconds(1))
        let all = try await completions(gateway)
        XCTAssertEqual(all.count, calls, "no call has two outcomes")
        XCTAssertEqual(Set(all.map(\.callID)), Set(decided.filter { $0.tool == "slow" }.map(\.callID)))
        XCTAssertEqual(all.map(\.outcome), Array(repeating: "success", count: calls))
        let lines = try replay(cluster.runtime).filter { $0["tool"]?.stringValue == "slow" }
        XCTAssertEqual(lines.count, calls)
        XCTAssertEqual(lines.map { $0["outcome"]?.stringValue ?? "" }, Array(repeating: "success", count: calls), "\(lines)")
        XCTAssertTrue(metric(gateway, "tollgate_outcomes_waiting 0.0"))
        XCTAssertTrue(gateway.log.contains("none is waiting"), gateway.log)
        for line in gateway.log.split(separator: "\n") where line.contains("keeping them in memory") || line.contains("none is waiting") {
            print("gateway: \(line.prefix(300))")
        }
        XCTAssertFalse(gateway.api("GET", "/metrics", as: nil).text.contains("tollgate_outcomes_dropped_total"), "none dropped")

        // The gateway serves again, and records as before.
        let again = try slowCalls(gateway, count: 1, seconds: 0.1)[0]
        let result = try await again.value
        XCTAssertEqual(result.steps.last?["ok"]?.boolValue, true, result.description)
        let final = try await gateway.events(type: ToolCallCompleted.type, atLeast: calls + 1)
        XCTAssertEqual(final.count, calls + 1)
    }

    /// A clean shutdown tries to write what is kept for a bounded time, then names each call whose outcome it could not
    /// write, and the log indeed lacks it.
    func testOutcomesStillKeptAtShutdownAreNamedInTheGatewaysLog() async throws {
        let cluster = try await OwnCluster.start()
        defer { cluster.remove() }
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("outage-ledger-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: ledger) }
        let gateway = try await gateway(on: cluster, ledger: ledger)
        defer { gateway.stop() }

        let run = try slowCalls(gateway, count: 1, seconds: 4)[0]
        try await awaitLedger(ledger, count: 1)
        let decided = try await gateway.events(type: ToolCallDecided.type).map { try EventCoding.decode(ToolCallDecided.self, from: $0.data) }
        let callID = try XCTUnwrap(decided.first { $0.tool == "slow" }?.callID).lowercasedString
        try cluster.cluster.stop(immediate: true)
        let result = try await run.value
        XCTAssertEqual(result.steps.last?["ok"]?.boolValue, true, result.description)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, !metric(gateway, "tollgate_outcomes_waiting 1.0") {
            try await Task.sleep(for: .milliseconds(50))
        }

        let stopping = ContinuousClock.now
        gateway.process.signal(SIGTERM)
        _ = try gateway.process.wait(timeout: .seconds(30))
        let took = stopping.duration(to: .now)
        print("stopped in \(took) with the outcome still kept")
        XCTAssertLessThan(took, .seconds(15), "the flush is bounded (5 s)")
        let log = gateway.log
        let named = log.split(separator: "\n").contains { $0.contains("could not write a call's outcome") && $0.contains(callID) }
        XCTAssertTrue(named, log)

        try cluster.cluster.start()
        let lines = try replay(cluster.runtime).filter { $0["tool"]?.stringValue == "slow" }
        XCTAssertEqual(lines.map { $0["outcome"]?.stringValue ?? "" }, ["no_outcome"], "the log line told the truth")
    }

    // MARK: - The backlog itself

    func reservation() -> CounterReservation {
        CounterReservation(
            key: CounterKey(server: "srv", counter: "c", scope: "agent:a", windowStart: 1_800_000_000, windowSeconds: 60), amount: 1, ceiling: 10,
            max: 10, algorithm: .fixed, rule: "limits[0]")
    }

    func decided(_ callID: UUID, _ reservations: [CounterReservation]) -> ToolCallDecided {
        ToolCallDecided(
            callID: callID, agent: "a", grant: "g", session: "s", server: "srv", tool: "t", requestID: "1", arguments: nil, argumentsHash: "h",
            argumentsStorage: "hash", decision: "allow", reason: nil, retryAfter: nil, rule: "default", policyHash: "p", category: nil,
            reservations: reservations.map(ToolCallDecided.Reservation.init), decisionMicros: 1, decidedAt: Date())
    }

    func completed(_ callID: UUID, outcome: String = "success", released: [CounterReservation] = []) -> ToolCallCompleted {
        ToolCallCompleted(
            callID: callID, server: "srv", tool: "t", outcome: outcome, errorCode: nil, error: outcome == "not_sent" ? "no upstream" : nil,
            durationMillis: 1, released: released.map(ToolCallDecided.Reservation.init), completedAt: Date())
    }

    /// Whether writes fail (the database "away"), and how many commit and then lose their answer.
    final class Outage: Sendable {
        private let state = Mutex((down: false, loseAnswers: 0, writes: [UUID]()))

        func set(down: Bool) { state.withLock { $0.down = down } }
        func loseAnswers(_ count: Int) { state.withLock { $0.loseAnswers = count } }
        var writes: [UUID] { state.withLock { $0.writes } }

        func write(_ completed: ToolCallCompleted, to recorder: ToolCallRecorder?) async throws {
            if state.withLock({ $0.down }) { throw PostgresError.connectionFailed(message: "test: the database is away") }
            try await recorder?.record(completed)
            let lose = state.withLock { state -> Bool in
                state.writes.append(completed.callID)
                guard state.loseAnswers > 0 else { return false }
                state.loseAnswers -= 1
                return true
            }
            if lose { throw PostgresError.connectionLost(message: "test: the commit's answer was lost") }
        }
    }

    func waitUntilEmpty(_ backlog: OutcomeBacklog, timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while backlog.waitingCount > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(backlog.waitingCount, 0)
    }

    /// A write whose commit succeeded but whose answer was lost is kept and retried: the retry is a version conflict,
    /// taken as "already recorded", so the stream holds one outcome and its reservation is given back once.
    func testAnOutcomeWhoseCommitAnswerWasLostIsWrittenAndGivesBackOnce() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        defer { store.stop() }
        let recorder = ToolCallRecorder(store: store)
        let limit = reservation()
        let (first, second) = (UUID.random(), UUID.random())
        try await recorder.record(decided(first, [limit]), reserving: [limit])
        try await recorder.record(decided(second, [limit]), reserving: [limit])
        let metrics = GatewayMetrics()
        let outage = Outage()
        let backlog = OutcomeBacklog(firstDelay: .milliseconds(20), metrics: metrics, logger: Logger(label: "test")) { completed in
            try await outage.write(completed, to: recorder)
        }
        outage.loseAnswers(1)
        await backlog.record(completed(first, outcome: "not_sent", released: [limit]))
        try await waitUntilEmpty(backlog)
        XCTAssertEqual(outage.writes, [first], "the retry found it written (its conflict is not a write)")
        let events = try await store.read(stream: ToolCallRecorder.stream(first))
        XCTAssertEqual(events.map(\.type), [ToolCallDecided.type, ToolCallCompleted.type])
        let count = try await store.client.query("SELECT count::float8 FROM tollgate.rate_windows WHERE counter = 'c'")[0].decode(Double.self, 0)
        XCTAssertEqual(count, 1, "two reservations, one given back once")
        let text = String(decoding: metrics.render(), as: UTF8.self)
        XCTAssertTrue(text.contains("tollgate_outcomes_waiting 0"), text)
        XCTAssertFalse(text.contains("tollgate_outcomes_dropped_total"), text)
    }

    /// Past its cap the newest outcome is dropped and counted; the kept ones are written in order, each once, when the
    /// database answers; what a shutdown cannot write is counted too.
    func testTheBacklogIsBoundedAndDrainsEachOutcomeOnce() async throws {
        let metrics = GatewayMetrics()
        let outage = Outage()
        outage.set(down: true)
        let backlog = OutcomeBacklog(
            capacity: 40, firstDelay: .milliseconds(10), maxDelay: .milliseconds(40), metrics: metrics, logger: Logger(label: "test")
        ) { completed in
            try await outage.write(completed, to: nil)
        }
        let ids = (0..<41).map { _ in UUID.random() }
        for id in ids { await backlog.record(completed(id)) }
        XCTAssertEqual(backlog.waitingCount, 40)
        var text = String(decoding: metrics.render(), as: UTF8.self)
        XCTAssertTrue(text.contains(#"tollgate_outcomes_dropped_total{reason="backlog_full"} 1"#), text)
        XCTAssertTrue(text.contains("tollgate_outcomes_waiting 40"), text)
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertEqual(outage.writes, [], "retried with backoff while away")

        outage.set(down: false)
        try await waitUntilEmpty(backlog)
        let writes = outage.writes
        XCTAssertEqual(writes.count, 40)
        XCTAssertEqual(Set(writes), Set(ids.prefix(40)), "the newest was the one dropped")
        XCTAssertEqual(Set(writes.prefix(OutcomeBacklog.batchSize)), Set(ids.prefix(OutcomeBacklog.batchSize)), "oldest first")
        text = String(decoding: metrics.render(), as: UTF8.self)
        XCTAssertTrue(text.contains("tollgate_outcomes_waiting 0"), text)

        // Away again at shutdown: the flush gives up after its time and counts what it could not write.
        outage.set(down: true)
        await backlog.record(completed(UUID.random()))
        let flushing = ContinuousClock.now
        await backlog.flush(within: .milliseconds(300))
        XCTAssertLessThan(flushing.duration(to: .now), .seconds(2))
        XCTAssertEqual(backlog.waitingCount, 0)
        text = String(decoding: metrics.render(), as: UTF8.self)
        XCTAssertTrue(text.contains(#"tollgate_outcomes_dropped_total{reason="shutdown"} 1"#), text)
    }
}
