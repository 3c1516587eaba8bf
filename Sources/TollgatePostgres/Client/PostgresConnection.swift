import CLibPQ
import Foundation

/// One libpq connection. Its calls block: use it from a pool thread (`PostgresClient` does), never from an
/// event loop, and from one thread at a time.
///
/// ```swift
/// let connection = try PostgresConnection.connect(PostgresConfiguration("host=/tmp dbname=tollgate"))
/// let result = try connection.query("SELECT $1::int + 1", [41])
/// ```
public final class PostgresConnection: @unchecked Sendable {
    // Exclusive use is the pool's job: a connection is leased to one task at a time.
    private var handle: OpaquePointer?
    /// Statements prepared on this connection, by their text (and parameter types), with their names.
    private var prepared: [String: String] = [:]
    /// How often statements not prepared yet have run: one is prepared the second time it runs, so a statement
    /// built for one occasion (a report's filters) never takes a place.
    private var seen: [String: Int] = [:]

    /// Statements prepared on one connection at most; later ones run unprepared.
    static let maxPrepared = 96
    /// Distinct unprepared statements counted at most before the count starts again.
    static let maxSeen = 512

    private init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// Opens a connection, or throws `PostgresError.connectionFailed` with libpq's reason.
    public static func connect(_ configuration: PostgresConfiguration) throws -> PostgresConnection {
        let pairs = configuration.keywordsAndValues
        let keywords = pairs.map { strdup($0.0) } + [nil]
        let values = pairs.map { strdup($0.1) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let handle = keywords.withUnsafeBufferPointer { keywordBuffer in
            values.withUnsafeBufferPointer { valueBuffer in
                keywordBuffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: keywords.count) { k in
                    valueBuffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: values.count) { v in
                        PQconnectdbParams(k, v, 1)
                    }
                }
            }
        }
        guard let handle else { throw PostgresError.connectionFailed(message: "out of memory") }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle))
            PQfinish(handle)
            throw PostgresError.connectionFailed(message: message)
        }
        let connection = PostgresConnection(handle: handle)
        // Timestamps are decoded from ISO text; pin the format so the server's settings cannot change it. Notices
        // ("schema already exists, skipping") would go to stderr through libpq's default printer: keep them back.
        // Prepared statements (see `query`) save parsing; each run is still planned for its own parameters, so a
        // statement never gets stuck with a plan made without them.
        // The session time-outs ride in the same round trip (see `PostgresConfiguration.SessionTimeouts`).
        let timeouts = configuration.timeouts.sql
        try connection.execute(
            "SET TimeZone TO 'UTC'; SET DateStyle TO 'ISO, YMD'; SET client_min_messages TO warning; SET plan_cache_mode TO force_custom_plan"
                + (timeouts.isEmpty ? "" : "; " + timeouts) + (configuration.asynchronousCommit ? "; SET synchronous_commit TO off" : ""))
        return connection
    }

    /// Runs one statement with parameters (`$1`, `$2`, ...) and returns its rows.
    ///
    /// - Parameter binaryResults: the rows in PostgreSQL's binary format (for reading many rows fast, with
    ///   `PostgresRow.withBytes`; `decode` reads the text format only).
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = [], binaryResults: Bool = false) throws -> PostgresResult {
        let handle = try liveHandle()
        let encoded = parameters.map(\.postgresParameter)
        var values: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        var types: [Oid] = []
        values.reserveCapacity(encoded.count)
        defer { values.forEach { free($0) } }
        for (index, parameter) in encoded.enumerated() {
            switch parameter {
            case .null:
                values.append(nil)
                lengths.append(0)
                formats.append(0)
                types.append(0)
            case .text(let text):
                guard !text.utf8.contains(0) else {
                    throw PostgresError.client(message: "parameter $\(index + 1) contains a NUL byte, which PostgreSQL text cannot hold")
                }
                values.append(strdup(text))
                lengths.append(0)
                formats.append(0)
                types.append(0)
            case .binary(let bytes):
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
                bytes.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: bytes.count) }
                }
                values.append(buffer)
                lengths.append(Int32(bytes.count))
                formats.append(1)
                types.append(17)  // bytea
            }
        }
        let statement = try preparedName(sql, types: types, handle: handle)
        let result = values.withUnsafeBufferPointer { valueBuffer in
            valueBuffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(values.count, 1)) { valuePointer in
                let values = encoded.isEmpty ? nil : valuePointer
                if let statement {
                    return PQexecPrepared(handle, statement, Int32(encoded.count), values, lengths, formats, binaryResults ? 1 : 0)
                }
                return PQexecParams(handle, sql, Int32(encoded.count), types, values, lengths, formats, binaryResults ? 1 : 0)
            }
        }
        return try check(result)
    }

    /// The name of `sql` prepared on this connection, preparing it the second time it runs; `nil` to run it
    /// unprepared (its first run, or the connection holds as many prepared statements as it may).
    ///
    /// The statement's parameter types are part of its identity: they are fixed when it is prepared.
    private func preparedName(_ sql: String, types: [Oid], handle: OpaquePointer) throws -> String? {
        let key = types.contains(where: { $0 != 0 }) ? sql + "\u{0}" + types.map(String.init).joined(separator: ",") : sql
        if let name = prepared[key] { return name }
        guard prepared.count < Self.maxPrepared else { return nil }
        guard seen[key] != nil else {
            if seen.count >= Self.maxSeen { seen.removeAll(keepingCapacity: true) }
            seen[key] = 1
            return nil
        }
        let name = "tollgate_\(prepared.count + 1)"
        _ = try check(PQprepare(handle, name, sql, Int32(types.count), types))
        seen.removeValue(forKey: key)
        prepared[key] = name
        return name
    }

    /// Runs one or more statements without parameters (the simple query protocol): for migrations and
    /// session commands. Never pass user input here.
    public func execute(_ sql: String) throws {
        let handle = try liveHandle()
        var result = PQexec(handle, sql)
        // PQexec returns the last statement's result; earlier errors stop the batch and come back here.
        _ = try check(result)
        result = nil
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    ///
    /// The body is synchronous on purpose: a transaction cannot wait on anything but this connection, so it
    /// stays short, which keeps the event log's committed high-water mark moving.
    ///
    /// Every transaction takes the event log's append lock (shared, see ``appendLockSQL``) before anything else, so one
    /// that appends events after other writes is still seen by the log's readers as a possible appender.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try execute("BEGIN; " + Self.appendLockSQL)
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            if isConnected { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Takes the event log's append lock in the current transaction: a shared, transaction-level advisory lock that every
    /// transaction appending to `tollgate.events` holds from before it has a transaction id (migration 0014), so the log's
    /// readers wait only for transactions that hold it, not for every transaction of the cluster. Shared: appends never
    /// wait for each other on it. The `tollgate.append_lock` setting tells the events table's trigger it is held.
    public static let appendLockSQL =
        "SELECT pg_advisory_xact_lock_shared(\(appendLockKey.0), \(appendLockKey.1)), set_config('tollgate.append_lock', 'on', true)"

    /// The append lock's two keys ("toll", 1): in `pg_locks` an advisory lock with classid, objid = these and objsubid 2.
    public static let appendLockKey: (Int32, Int32) = (1_953_459_308, 1)

    /// Whether the connection is open and not broken: reads whatever the server sent while it was idle
    /// (a termination notice, end of stream) without blocking.
    public var isUsable: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        // A server that ended the session (restart, pg_terminate_backend, idle timeout) has closed its end:
        // libpq only notices at the next query, but the socket already reports the hang-up.
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN) | Self.pollReadHangUp, revents: 0)
        if poll(&descriptor, 1, 0) > 0, descriptor.revents & (Self.pollReadHangUp | Int16(POLLHUP | POLLERR)) != 0 { return false }
        if PQconsumeInput(handle) == 0 { return false }
        return PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// `POLLRDHUP`: the peer closed its end. Linux only, and hidden behind `_GNU_SOURCE` in Swift's Glibc module.
    #if os(Linux)
        private static let pollReadHangUp: Int16 = 0x2000
    #else
        private static let pollReadHangUp: Int16 = 0
    #endif

    var isConnected: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Whether a transaction is open or failed on this connection.
    var isInTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// The server's backend process id, for `pg_terminate_backend` in tests and for log lines.
    public var backendPID: Int32 {
        guard let handle else { return 0 }
        return PQbackendPID(handle)
    }

    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    private func liveHandle() throws -> OpaquePointer {
        guard let handle else { throw PostgresError.connectionLost(message: "the connection is closed") }
        return handle
    }

    private func check(_ result: OpaquePointer?) throws -> PostgresResult {
        let handle = try liveHandle()
        guard let result else {
            let message = String(cString: PQerrorMessage(handle))
            if PQstatus(handle) != CONNECTION_OK { throw PostgresError.connectionLost(message: message) }
            throw PostgresError.client(message: message)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(handle: result)
        default:
            defer { PQclear(result) }
            func field(_ code: Character) -> String? {
                guard let pointer = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
                return String(cString: pointer)
            }
            guard let sqlState = field("C") else {
                let message = String(cString: PQresultErrorMessage(result))
                if PQstatus(handle) != CONNECTION_OK { throw PostgresError.connectionLost(message: message) }
                throw PostgresError.client(message: message)
            }
            let error = PostgresError.ServerError(
                sqlState: sqlState, message: field("M") ?? "", detail: field("D"), hint: field("H"), constraint: field("n"))
            if PQstatus(handle) != CONNECTION_OK {
                throw PostgresError.connectionLost(message: "\(error.message) (SQLSTATE \(sqlState))")
            }
            throw PostgresError.server(error)
        }
    }
}

extension PostgresConnection {
    /// Starts receiving notifications sent on `channel` (a plain identifier: letters, digits, underscores).
    public func listen(_ channel: String) throws {
        guard !channel.isEmpty, channel.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (48...57).contains($0) || (97...122).contains($0) }) else {
            throw PostgresError.client(message: "channel name \"\(channel)\" must be lower-case letters, digits and underscores")
        }
        try execute("LISTEN \(channel)")
    }

    /// Waits up to `timeout` for the socket to become readable, then returns every notification that arrived.
    /// Returns an empty array on timeout; throws `connectionLost` if the connection broke.
    public func waitForNotifications(timeout: Duration) throws -> [PostgresNotification] {
        let handle = try liveHandle()
        var notifications = drainNotifications(handle)
        if !notifications.isEmpty { return notifications }
        let socket = PQsocket(handle)
        guard socket >= 0 else { throw PostgresError.connectionLost(message: "the connection has no socket") }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0 && errno != EINTR {
            throw PostgresError.connectionLost(message: String(cString: strerror(errno)))
        }
        if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK {
            throw PostgresError.connectionLost(message: String(cString: PQerrorMessage(handle)))
        }
        notifications = drainNotifications(handle)
        return notifications
    }

    private func drainNotifications(_ handle: OpaquePointer) -> [PostgresNotification] {
        var notifications: [PostgresNotification] = []
        while let notify = PQnotifies(handle) {
            let message = notify.pointee
            notifications.append(
                PostgresNotification(channel: String(cString: message.relname), payload: String(cString: message.extra), senderPID: message.be_pid))
            PQfreemem(notify)
        }
        return notifications
    }
}

/// A message sent with `NOTIFY channel, 'payload'` or `pg_notify`.
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    public var senderPID: Int32
}
