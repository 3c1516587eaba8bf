import Logging
import ServiceLifecycle
import Synchronization

import struct Foundation.Date

/// Keeps projections up to date with the log: reads events after each projection's checkpoint in batches and
/// applies each batch and the new checkpoint in one transaction.
///
/// Several runners (in several gateway processes) may share a database: the checkpoint row is locked for the
/// batch, so each event is applied once whoever applies it.
///
/// ```swift
/// let runner = ProjectionRunner(store: store, projections: [StreamSummaryProjection()])
/// try await runner.catchUp()           // once, e.g. in a command
/// try await runner.rebuild("streams")  // from position zero
/// // or as a Service in a ServiceGroup: follows the log until shutdown
/// ```
public final class ProjectionRunner: Service, Sendable {
    public let store: EventStore
    public let projections: [any Projection]
    let batchSize: Int
    let pollInterval: Duration
    /// How long the runner gathers commits after a batch that applied something, before it reads again.
    let gather: Duration
    let logger: Logger
    /// When each lazy projection last wrote its checkpoint.
    private let checkpointWrites = Mutex<[String: ContinuousClock.Instant]>([:])
    /// Who holds the log's horizon back, and since when (see `watchHorizon`).
    private let horizon = Mutex(HorizonWatch())
    /// Told how many seconds the horizon has been held back, at each look (a metric).
    private let horizonObserver = Mutex<(@Sendable (Double) -> Void)?>(nil)

    /// How long one appending transaction may hold the log's readers back before a warning names it.
    static let horizonWarning = Duration.seconds(5)
    /// How often the runner looks at who holds the horizon back.
    static let horizonLookInterval = Duration.seconds(1)

    public init(
        store: EventStore, projections: [any Projection], batchSize: Int = 2000, pollInterval: Duration = .milliseconds(500),
        gather: Duration = .milliseconds(50), logger: Logger = Logger(label: "tollgate.projections")
    ) {
        self.store = store
        self.projections = projections
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.gather = gather
        self.logger = logger
    }

    /// Follows the log until the task is cancelled or the service group shuts down.
    public func run() async throws {
        let signal = store.changes
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let seen = signal.generation
                do {
                    // Under a stream of commits, gather them for a moment: one transaction for many events rather
                    // than one per commit, which would double the database's write load on a busy gateway. A commit
                    // after a quiet spell is applied at once; under load, each waits at most `gather` more. 50 ms
                    // (10 before) took about 30 µs of PostgreSQL's CPU off each call at 1,000 calls/s, and under load
                    // delays a held call's release or a reviewer's webhook by no more than that.
                    if try await self.catchUp() > 0 { try await LoopTimer.sleep(for: self.gather) }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.error("projection update failed; retrying", metadata: ["error": "\(error)"])
                }
                await self.watchHorizonIfDue()
                await signal.wait(after: seen, timeout: self.pollInterval)
            }
        }
    }

    // MARK: - The horizon

    /// Calls `body` with the seconds the log's horizon has been held back (0 when nothing holds it) each time the runner
    /// looks (about every second while it runs): for `tollgate_log_horizon_held_seconds`.
    public func observeHorizon(_ body: @escaping @Sendable (Double) -> Void) {
        horizonObserver.withLock { $0 = body }
    }

    /// Seconds the log's horizon has been held back by the oldest transaction that holds the append lock (0: none),
    /// as of the last look.
    public var horizonHeldSeconds: Double { horizon.withLock { $0.heldSeconds } }

    struct HorizonWatch {
        var lastLook: ContinuousClock.Instant?
        /// The oldest holder seen, and when it was first seen.
        var holder: (pid: Int32, transactionID: String)?
        var since: ContinuousClock.Instant = .now
        var warned = false
        var heldSeconds: Double = 0
    }

    /// The oldest transaction that holds the append lock with a transaction id (the log's readers wait for it), if any.
    public struct HorizonHolder: Sendable, Hashable {
        public var pid: Int32
        public var transactionID: String
        public var user: String?
        public var applicationName: String?
        public var state: String?
        /// Seconds since its transaction began, when this role may see it (`pg_read_all_stats` or the same role).
        public var transactionAge: Double?
    }

    /// The oldest holder of the append lock with a transaction id, other than this connection.
    public static func horizonHolder(on connection: PostgresConnection) throws -> HorizonHolder? {
        let result = try connection.query(
            """
            WITH holders AS (
                SELECT k.pid, k.virtualtransaction FROM pg_locks k
                WHERE k.locktype = 'advisory' AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND k.classid = \(PostgresConnection.appendLockKey.0) AND k.objid = \(PostgresConnection.appendLockKey.1) AND k.objsubid = 2
                  AND k.pid IS DISTINCT FROM pg_backend_pid()
            ), ids AS (
                SELECT h.pid, x.transactionid FROM holders h
                JOIN pg_locks x ON x.virtualtransaction = h.virtualtransaction AND x.locktype = 'transactionid'
                  AND x.mode = 'ExclusiveLock' AND x.granted
            )
            SELECT coalesce(i.pid, 0), i.transactionid::text, a.usename::text, a.application_name, a.state,
                   extract(epoch FROM now() - a.xact_start)::float8
            FROM ids i LEFT JOIN pg_stat_activity a ON a.pid = i.pid
            ORDER BY age(i.transactionid) DESC LIMIT 1
            """)
        guard result.rowCount == 1 else { return nil }
        let row = result[0]
        return HorizonHolder(
            pid: Int32(try row.decode(Int.self, 0)), transactionID: try row.decode(String.self, 1), user: try row.decode(String?.self, 2),
            applicationName: try row.decode(String?.self, 3), state: try row.decode(String?.self, 4), transactionAge: try row.decode(Double?.self, 5))
    }

    /// Looks at who holds the horizon back, at most every `horizonLookInterval`: updates the held seconds (and the
    /// observer), and logs a warning naming the transaction once it has held the log back `horizonWarning`, and a line
    /// when it lets go. The wait itself is bounded by that transaction's own time-outs (`statement_timeout`,
    /// `idle_in_transaction_session_timeout`) for the gateway's connections.
    private func watchHorizonIfDue() async {
        let due = horizon.withLock { watch -> Bool in
            if let last = watch.lastLook, last.duration(to: .now) < Self.horizonLookInterval { return false }
            watch.lastLook = .now
            return true
        }
        guard due else { return }
        let holder: HorizonHolder?
        do {
            holder = try await store.client.withConnection { try Self.horizonHolder(on: $0) }
        } catch {
            return
        }
        enum Say { case warn(Double), released(Double) }
        let (held, says) = horizon.withLock { watch -> (Double, [Say]) in
            var says: [Say] = []
            let same = holder.map { now in watch.holder.map { $0.pid == now.pid && $0.transactionID == now.transactionID } ?? false } ?? false
            if !same {
                if watch.warned { says.append(.released(watch.heldSeconds)) }
                watch.holder = holder.map { ($0.pid, $0.transactionID) }
                watch.since = .now
                watch.warned = false
                watch.heldSeconds = 0
            }
            guard let holder else { return (0, says) }
            let seen = watch.since.duration(to: .now)
            watch.heldSeconds = max(Double(seen.components.seconds) + Double(seen.components.attoseconds) / 1e18, holder.transactionAge ?? 0)
            if !watch.warned, watch.heldSeconds >= Double(Self.horizonWarning.components.seconds) {
                watch.warned = true
                says.append(.warn(watch.heldSeconds))
            }
            return (watch.heldSeconds, says)
        }
        horizonObserver.withLock { $0 }?(held)
        for say in says {
            switch say {
            case .warn(let seconds):
                guard let holder else { break }
                logger.warning(
                    "an open transaction that appends to the event log holds its readers back (projections, seals, webhooks, held calls' releases)",
                    metadata: [
                        "pid": "\(holder.pid)", "user": "\(holder.user ?? "?")", "application_name": "\(holder.applicationName ?? "?")",
                        "state": "\(holder.state ?? "?")",
                        "transaction_age_seconds": "\(holder.transactionAge.map { String(format: "%.1f", $0) } ?? "?")",
                        "held_seconds": "\(String(format: "%.1f", seconds))",
                    ])
            case .released(let seconds):
                logger.notice("the event log's readers are no longer held back", metadata: ["held_seconds": "\(String(format: "%.1f", seconds))"])
            }
        }
    }

    /// Applies every readable event to every projection, and returns how many events were applied in all.
    ///
    /// The projections move together: one transaction per batch locks every checkpoint, reads the events once, applies
    /// each projection's share and moves the checkpoints, instead of a transaction (and a commit) per projection. If
    /// that fails, each projection is tried alone, so one failing projection cannot hold back the others' rows.
    @discardableResult
    public func catchUp() async throws -> Int {
        if projections.count > 1 {
            do {
                return try await catchUpTogether()
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.debug("the projections' joint update failed; updating them one at a time", metadata: ["error": "\(error)"])
            }
        }
        var total = 0
        for projection in projections {
            total += try await catchUp(projection)
        }
        return total
    }

    /// Every projection's share of each batch in one transaction; see `catchUp()`.
    private func catchUpTogether() async throws -> Int {
        let projections = projections
        let names = projections.map(\.name)
        let batchSize = batchSize
        // The events every projection needs: all types if one folds all, data if one reads it.
        let types: Set<String>? =
            projections.contains { $0.eventTypes == nil } ? nil : projections.reduce(into: Set<String>()) { $0.formUnion($1.eventTypes ?? []) }
        let withData = projections.contains { $0.readsData }
        var total = 0
        while true {
            try Task.checkCancellation()
            let lastWrites = checkpointWrites.withLock { $0 }
            let (applied, more, moved) = try await store.client.withTransaction { connection -> (Int, Bool, [String]) in
                let checkpoints = try Self.lockCheckpoints(names, on: connection)
                guard let start = checkpoints.values.min() else { return (0, false, []) }
                let (events, scanned) = try EventStore.readAll(after: start, limit: batchSize, types: types, withData: withData, on: connection)
                guard let scanned else { return (0, false, []) }
                var applied = 0
                for projection in projections {
                    let checkpoint = checkpoints[projection.name] ?? .start
                    let share = events.filter { event in
                        event.logPosition > checkpoint && projection.eventTypes.map { $0.contains(event.type) } ?? true
                    }
                    if !share.isEmpty { try projection.apply(share, on: connection) }
                    applied += share.count
                }
                // A projection that folds only some types moves past the others' events with everyone else's checkpoint;
                // alone (nothing applied in this batch: a commit of its own) at most every few seconds, or when the batch
                // was full (it would be read again otherwise).
                let more = events.count == batchSize
                let moving = projections.filter { projection in
                    guard let checkpoint = checkpoints[projection.name], checkpoint < scanned else { return false }
                    let lastWrite = lastWrites[projection.name] ?? .now - .seconds(60)
                    return applied > 0 || more || projection.eventTypes == nil || lastWrite.duration(to: .now) >= .seconds(5)
                }.map(\.name)
                if !moving.isEmpty {
                    try Self.moveCheckpoints(moving, to: scanned, on: connection)
                }
                return (applied, more, moving)
            }
            if !moved.isEmpty { checkpointWrites.withLock { writes in for name in moved { writes[name] = .now } } }
            total += applied
            if !more { return total }
        }
    }

    /// Every named checkpoint, created if needed and locked for this transaction (in name order, as every runner locks
    /// them), by name.
    static func lockCheckpoints(_ names: [String], on connection: PostgresConnection) throws -> [String: LogPosition] {
        let select = """
            SELECT name, transaction_id::text, position FROM tollgate.projection_checkpoints
            WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE
            """
        var result = try connection.query(select, [PostgresArray(names)])
        if result.rowCount < Set(names).count {
            try connection.query(
                "INSERT INTO tollgate.projection_checkpoints (name) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING",
                [PostgresArray(names)])
            result = try connection.query(select, [PostgresArray(names)])
        }
        var checkpoints: [String: LogPosition] = [:]
        for row in result.rows {
            checkpoints[try row.decode(String.self, 0)] = LogPosition(
                transactionID: try row.decode(UInt64.self, 1), position: try row.decode(Int64.self, 2))
        }
        return checkpoints
    }

    /// Empties the projection named `name` and replays the whole log into it, in one transaction: readers see the old
    /// rows until it commits, then the new ones, never a half-built table. Returns the events replayed.
    @discardableResult
    public func rebuild(_ name: String) async throws -> Int {
        let projection = try self.projection(named: name)
        let batchSize = batchSize
        return try await store.client.withTransaction { connection in
            // A rebuild folds the whole log, in statements that may take longer than the session's statement time-out.
            try connection.execute("SET LOCAL statement_timeout = 0")
            try Self.lockCheckpoint(projection.name, on: connection)
            try projection.reset(on: connection)
            var position = LogPosition.start
            var total = 0
            if let head = try EventStore.readableHead(on: connection),
                let covered = try projection.rebuildInDatabase(through: head, on: connection)
            {
                position = head
                total = covered
            }
            while true {
                let (events, scanned) = try EventStore.readAll(
                    after: position, limit: batchSize, types: projection.eventTypes, withData: projection.readsData, on: connection)
                guard let scanned else { break }
                if !events.isEmpty { try projection.apply(events, on: connection) }
                position = scanned
                total += events.count
            }
            try Self.moveCheckpoints([projection.name], to: position, on: connection)
            return total
        }
    }

    /// Each projection's checkpoint and how many readable events lie beyond it.
    public func status() async throws -> [ProjectionStatus] {
        let names = projections.map(\.name)
        return try await store.client.withConnection { connection in
            try names.map { name in
                let result = try connection.query(
                    """
                    SELECT c.transaction_id::text, c.position, c.updated_at,
                           (SELECT count(*) FROM tollgate.events e
                            WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position))
                    FROM tollgate.projection_checkpoints c WHERE c.name = $1
                    """, [name])
                guard result.rowCount == 1 else {
                    let lag = try connection.query("SELECT count(*) FROM tollgate.events")[0].decode(Int64.self, 0)
                    return ProjectionStatus(name: name, checkpoint: .start, updatedAt: nil, lag: lag)
                }
                let row = result[0]
                return ProjectionStatus(
                    name: name,
                    checkpoint: LogPosition(transactionID: try row.decode(UInt64.self, 0), position: try row.decode(Int64.self, 1)),
                    updatedAt: try row.decode(Date?.self, 2), lag: try row.decode(Int64.self, 3))
            }
        }
    }

    func projection(named name: String) throws -> any Projection {
        guard let projection = projections.first(where: { $0.name == name }) else {
            throw ProjectionError.unknownProjection(name: name, known: projections.map(\.name))
        }
        return projection
    }

    private func catchUp(_ projection: any Projection) async throws -> Int {
        var total = 0
        let batchSize = self.batchSize
        // A projection that folds only some event types moves its checkpoint past the others without a write of its
        // own each time (that would be a commit per wake-up on a busy log): at once when it applied something, else at
        // most every few seconds.
        let lazy = projection.eventTypes != nil
        let lastWrite = checkpointWrites.withLock { $0[projection.name] } ?? .now - .seconds(60)
        while true {
            try Task.checkCancellation()
            let (applied, more, wrote) = try await store.client.withTransaction { connection -> (Int, Bool, Bool) in
                let checkpoint = try Self.lockCheckpoint(projection.name, on: connection)
                let (events, scanned) = try EventStore.readAll(
                    after: checkpoint, limit: batchSize, types: projection.eventTypes, withData: projection.readsData, on: connection)
                guard let scanned else { return (0, false, false) }
                if events.isEmpty, lazy, lastWrite.duration(to: .now) < .seconds(5) { return (0, false, false) }
                if !events.isEmpty { try projection.apply(events, on: connection) }
                try Self.moveCheckpoints([projection.name], to: scanned, on: connection)
                return (events.count, events.count == batchSize, true)
            }
            // Every write counts, a checkpoint-only one too: otherwise a lazy projection past its few seconds would write
            // its checkpoint at every wake-up until it next applied something.
            if wrote { checkpointWrites.withLock { $0[projection.name] = .now } }
            total += applied
            if !more { return total }
        }
    }

    /// Creates the checkpoint row if needed and locks it for this transaction; returns where it stands.
    @discardableResult
    static func lockCheckpoint(_ name: String, on connection: PostgresConnection) throws -> LogPosition {
        try lockCheckpoints([name], on: connection)[name] ?? .start
    }

    /// Moves the named checkpoints to `position`, in the caller's transaction (which holds their locks).
    static func moveCheckpoints(_ names: [String], to position: LogPosition, on connection: PostgresConnection) throws {
        try connection.query(
            """
            UPDATE tollgate.projection_checkpoints c
            SET transaction_id = $2::text::xid8, position = $3, updated_at = now()
            WHERE c.name = ANY($1::text[])
            """, [PostgresArray(names), String(position.transactionID), position.position])
    }
}

/// Where a projection stands.
public struct ProjectionStatus: Sendable, Hashable, Codable {
    public var name: String
    public var checkpoint: LogPosition
    public var updatedAt: Date?
    /// Events in the log beyond the checkpoint.
    public var lag: Int64
}

public enum ProjectionError: Error, CustomStringConvertible, Equatable {
    case unknownProjection(name: String, known: [String])

    public var description: String {
        switch self {
        case .unknownProjection(let name, let known):
            return "there is no projection named \"\(name)\"; known projections: \(known.joined(separator: ", "))"
        }
    }
}
