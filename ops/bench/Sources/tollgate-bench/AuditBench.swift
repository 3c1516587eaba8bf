import ArgumentParser
import Foundation
import Logging
import TollgateCore
import TollgatePostgres
import TollgateServer

/// `tollgate-bench audit`: sealing, `audit verify` and `projections rebuild` throughput over a large log.
///
/// Writes `--events` events (tool-call decisions, with an approval request, a grant and a consumption for one call in
/// fifty) straight into a fresh embedded cluster (durable defaults), seals them as the projector does, then times
/// the verifier and the rebuild of every projection that can be rebuilt.
struct AuditBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "audit verify and projections rebuild throughput, in events per second.")

    @Option(help: "Events in the log.")
    var events = 1_000_000

    @Option(help: "A PostgreSQL connection string to use instead of a fresh embedded cluster (its tollgate schema is filled).")
    var database: String?

    func validate() throws {
        guard (1000...50_000_000).contains(events) else { throw ValidationError("--events must be from 1000 to 50000000") }
    }

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let bench = try BenchDatabase(connectionString: database, name: "audit", logger: logger)
        defer { bench.close() }
        let configuration = bench.configuration
        let client = PostgresClient(configuration: configuration, options: .init(maxConnections: 4), logger: logger)
        try await Migrator(logger: logger).migrate(client)
        let store = EventStore(client: client, logger: logger)
        defer { store.stop() }

        var clock = ContinuousClock.now
        try await Self.fill(client, events: events)
        let written = try await client.query("SELECT count(*) FROM tollgate.events")[0].decode(Int64.self, 0)
        print("log: \(written) events written in \(Self.seconds(since: clock)) s")

        let projections = GatewayServer.projections()
        clock = .now
        let sealed = try await ProjectionRunner(store: store, projections: projections.filter { $0.name == "seal" }, batchSize: 5000, logger: logger)
            .catchUp()
        Self.report("seal (projector)", sealed, since: clock)

        // The hashing alone, on one thread: canonical JSON and SHA-256 of one typical event, many times.
        let sample = try await client.query("SELECT data::text FROM tollgate.events WHERE type = 'ToolCallDecided' LIMIT 1")[0].decode(
            JSONText.self, 0
        ).bytes
        clock = .now
        var digest: [UInt8] = []
        for index in 0..<50_000 {
            digest = try AuditVerifier.leafForBenchmark(position: Int64(index), data: sample)
        }
        print(
            "hashing one event (canonical JSON + SHA-256, one thread): \(String(format: "%.2f", Self.seconds(clock.duration(to: .now)) / 50_000 * 1e6)) µs (\(sample.count) bytes of JSON, digest \(digest.count) bytes)"
        )

        clock = .now
        let report = try await AuditVerifier(client: client).verify()
        Self.report("audit verify", report.checked, since: clock)
        guard report.breaks.isEmpty, report.checked == Int(written) else {
            throw ValidationError("verify found \(report.breaks.count) breaks and checked \(report.checked) of \(written) events")
        }

        let runner = ProjectionRunner(store: store, projections: projections, batchSize: 5000, logger: logger)
        for projection in projections where projection.name != "seal" {
            clock = .now
            let applied = try await runner.rebuild(projection.name)
            // Throughput over the whole log it covers (the approvals projection reads only approval events).
            Self.report("projections rebuild \(projection.name) (\(applied) of them folded)", Int(written), since: clock)
        }
        await client.shutdown()
    }

    /// Fills the log in transactions of 50,000 events (as many transactions, so many transaction ids, as a real log).
    static func fill(_ client: PostgresClient, events: Int) async throws {
        // About two events per call: 25,000 calls are about 50,000 events.
        let callsPerChunk = 25_000
        var written = 0
        var chunk = 0
        while written < events {
            let first = chunk * callsPerChunk + 1
            let calls = min(callsPerChunk, (events - written) / 2 + 1)
            // Fifty calls of one approval-needing shape and 49 allowed: per 50 calls, 50 decisions, 1 request, 1 grant,
            // 1 consumption and 49 completions, about 2 events per call in all.
            _ = try await client.withTransaction { connection in
                try connection.query(
                    """
                    INSERT INTO tollgate.events (stream_id, version, type, data)
                    SELECT s.stream_id, s.version, s.type, s.data FROM (
                      SELECT g, 'call-' || md5(g::text)::uuid AS stream_id, 1 AS version, 'ToolCallDecided' AS type,
                             jsonb_build_object(
                               'callID', md5(g::text)::uuid, 'agent', 'agent-' || (g % 7), 'grant', 'grant-' || (g % 3),
                               'session', md5((g / 20)::text), 'server', 'stripe', 'tool', CASE WHEN g % 50 = 0 THEN 'transfer' ELSE 'list_charges' END,
                               'requestID', (g % 1000)::text, 'arguments', jsonb_build_object('amount', g % 10000, 'currency', 'usd', 'to', 'acct_' || g),
                               'argumentsHash', md5(g::text) || md5((g + 1)::text), 'argumentsStorage', 'full',
                               'decision', CASE WHEN g % 50 = 0 THEN 'require_approval' ELSE 'allow' END, 'rule', 'tools.list_charges',
                               'policyHash', 'sha256:0f3a', 'reservations', '[]'::jsonb, 'decisionMicros', 41,
                               'decidedAt', '2026-12-02T08:00:00.000Z') AS data
                      FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g
                      UNION ALL
                      SELECT g, 'call-' || md5(g::text)::uuid, 2, 'ToolCallCompleted',
                             jsonb_build_object('callID', md5(g::text)::uuid, 'server', 'stripe', 'tool', 'list_charges', 'outcome', 'success',
                               'durationMillis', 3.2, 'released', '[]'::jsonb, 'completedAt', '2026-12-02T08:00:00.004Z')
                      FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g WHERE g % 50 <> 0
                      UNION ALL
                      SELECT g, 'approval-' || md5('a' || g)::uuid, 1, 'ApprovalRequested',
                             jsonb_build_object('approvalID', md5('a' || g)::uuid, 'callID', md5(g::text)::uuid, 'agent', 'agent-' || (g % 7),
                               'grant', 'grant-' || (g % 3), 'session', md5((g / 20)::text), 'server', 'stripe', 'tool', 'transfer',
                               'arguments', jsonb_build_object('amount', g % 10000), 'argumentsHash', md5(g::text) || md5(g::text),
                               'argumentsStorage', 'full', 'policyHash', 'sha256:0f3a', 'rule', 'tools.transfer', 'quorum', 1,
                               'reviewers', '[]'::jsonb, 'requestedAt', '2026-12-02T08:00:00.000Z', 'expiresAt', '2026-12-02T09:00:00.000Z')
                      FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g WHERE g % 50 = 0
                      UNION ALL
                      SELECT g, 'approval-' || md5('a' || g)::uuid, 2, 'ApprovalGranted',
                             jsonb_build_object('approvalID', md5('a' || g)::uuid, 'reviewer', 'alice', 'grantedAt', '2026-12-02T08:00:10.000Z')
                      FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g WHERE g % 50 = 0
                      UNION ALL
                      SELECT g, 'approval-' || md5('a' || g)::uuid, 3, 'ApprovalConsumed',
                             jsonb_build_object('approvalID', md5('a' || g)::uuid, 'callID', md5(g::text)::uuid, 'reservations', '[]'::jsonb,
                               'consumedAt', '2026-12-02T08:00:10.020Z')
                      FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g WHERE g % 50 = 0
                    ) s ORDER BY s.g, s.type DESC
                    """, [first, calls])
            }
            written += 2 * calls
            chunk += 1
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> String {
        String(format: "%.2f", seconds(start.duration(to: .now)))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func report(_ name: String, _ count: Int, since start: ContinuousClock.Instant) {
        let elapsed = seconds(start.duration(to: .now))
        print("\(name): \(count) events in \(String(format: "%.2f", elapsed)) s = \(Int(Double(count) / max(elapsed, 1e-9))) events/s")
    }
}
