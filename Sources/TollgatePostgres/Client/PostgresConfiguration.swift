import Foundation

/// Where and how to connect: a libpq connection string (`host=/run/pg dbname=tollgate`) or URL
/// (`postgresql://user@host/db?sslmode=require`), or nothing, in which case libpq reads the standard `PG*`
/// environment variables, `~/.pgpass` and service files as every PostgreSQL tool does.
public struct PostgresConfiguration: Sendable, Hashable {
    /// The connection string or URL; empty means "from the environment".
    public var connectionString: String
    /// Seconds to wait for a server to answer a new connection; libpq's `connect_timeout`. Used unless the
    /// connection string or `PGCONNECT_TIMEOUT` sets one.
    public var defaultConnectTimeout: Int
    /// Shown in `pg_stat_activity`.
    public var applicationName: String
    /// Server-side time-outs set on every connection at connect, each only where nothing else set it (see
    /// ``SessionTimeouts``).
    public var timeouts: SessionTimeouts
    /// Every transaction of these connections commits asynchronously (`SET synchronous_commit TO off` at connect): the
    /// commit returns once it is written and ordered in the WAL, before the flush. For the gateway's `commit: async`
    /// decisions only (docs/gateway.md); a later synchronous commit on any connection flushes it too.
    public var asynchronousCommit = false

    public init(
        _ connectionString: String = "", defaultConnectTimeout: Int = 10, applicationName: String = "tollgate",
        timeouts: SessionTimeouts = SessionTimeouts()
    ) {
        self.connectionString = connectionString
        self.defaultConnectTimeout = defaultConnectTimeout
        self.applicationName = applicationName
        self.timeouts = timeouts
    }

    /// `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout` for the gateway's connections, so a
    /// statement stuck behind a lock, a runaway query or a transaction left open cannot hold a pool thread (and the
    /// projector's horizon) without end while the server runs.
    ///
    /// Each is set at connect only when the server's value is still PostgreSQL's built-in default (none): a value from
    /// the connection string (`options=-c statement_timeout=5s`), `PGOPTIONS`, `ALTER ROLE/DATABASE ... SET` or
    /// `postgresql.conf` wins. `nil` leaves the setting alone. A server that does not run at all (stopped, SIGSTOP) enforces
    /// none of them: that is the callers' deadlines' job (the gate's decision deadline, the pool's wait time-out).
    public struct SessionTimeouts: Sendable, Hashable {
        /// 30 s: a statement running longer is cancelled by the server.
        public var statement: Duration?
        /// 10 s: a statement waiting longer for a lock (a `LOCK TABLE` elsewhere) fails.
        public var lock: Duration?
        /// 30 s: a session idle inside a transaction that long is ended by the server.
        public var idleInTransaction: Duration?

        public init(statement: Duration? = .seconds(30), lock: Duration? = .seconds(10), idleInTransaction: Duration? = .seconds(30)) {
            self.statement = statement
            self.lock = lock
            self.idleInTransaction = idleInTransaction
        }

        /// None set.
        public static let none = SessionTimeouts(statement: nil, lock: nil, idleInTransaction: nil)

        /// The settings' names and values in milliseconds, for `set_config`.
        var settings: [(name: String, milliseconds: Int64)] {
            [("statement_timeout", statement), ("lock_timeout", lock), ("idle_in_transaction_session_timeout", idleInTransaction)]
                .compactMap { name, value in
                    value.map { (name, max(1, $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000)) }
                }
        }

        /// One statement that sets each where the server still has its built-in default; empty when there is none.
        var sql: String {
            let values = settings.map { "('\($0.name)', '\($0.milliseconds)')" }
            guard !values.isEmpty else { return "" }
            return """
                SELECT set_config(d.name, d.value, false) FROM (VALUES \(values.joined(separator: ", "))) AS d(name, value) \
                JOIN pg_settings s ON s.name = d.name WHERE s.source = 'default'
                """
        }
    }

    /// libpq's keyword/value pairs: our defaults first, then the connection string, which libpq expands in place
    /// (`expand_dbname`) so that anything it sets overrides the defaults.
    var keywordsAndValues: [(String, String)] {
        var pairs: [(String, String)] = [("application_name", applicationName), ("client_encoding", "UTF8")]
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil {
            pairs.append(("connect_timeout", String(defaultConnectTimeout)))
        }
        // TCP only (libpq ignores them on a Unix socket), each overridable by the connection string: a peer that vanished
        // (host down, network cut) is found by keepalives within about 25 s when idle, and a connection whose sent data
        // goes unacknowledged for 30 s fails, so a pool thread never waits on a dead TCP peer for the kernel's 15 minutes.
        pairs += Self.tcpDefaults
        if !connectionString.isEmpty {
            pairs.append(("dbname", connectionString))
        }
        return pairs
    }

    /// libpq's TCP keepalive and user time-out settings used unless the connection string sets its own.
    static let tcpDefaults: [(String, String)] = [
        ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"), ("keepalives_count", "3"), ("tcp_user_timeout", "30000"),
    ]

    /// The connection string with any password removed, for log lines and error messages.
    public var redacted: String {
        if connectionString.isEmpty { return "(from PG* environment variables)" }
        var text = connectionString
        // URL form: scheme://user:password@host
        if let schemeEnd = text.range(of: "://"), let at = text.range(of: "@", range: schemeEnd.upperBound..<text.endIndex) {
            let userInfo = text[schemeEnd.upperBound..<at.lowerBound]
            if let colon = userInfo.firstIndex(of: ":") {
                text.replaceSubrange(colon..<at.lowerBound, with: ":***")
            }
        }
        // keyword form: password=secret or password='se cret'
        if let range = text.range(of: #"password\s*=\s*('([^'\\]|\\.)*'|\S+)"#, options: .regularExpression) {
            text.replaceSubrange(range, with: "password=***")
        }
        if let range = text.range(of: #"password=[^&]*"#, options: .regularExpression), text.contains("://") {
            text.replaceSubrange(range, with: "password=***")
        }
        return text
    }
}
