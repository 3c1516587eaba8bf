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

    public init(_ connectionString: String = "", defaultConnectTimeout: Int = 10, applicationName: String = "tollgate") {
        self.connectionString = connectionString
        self.defaultConnectTimeout = defaultConnectTimeout
        self.applicationName = applicationName
    }

    /// libpq's keyword/value pairs: our defaults first, then the connection string, which libpq expands in place
    /// (`expand_dbname`) so that anything it sets overrides the defaults.
    var keywordsAndValues: [(String, String)] {
        var pairs: [(String, String)] = [("application_name", applicationName), ("client_encoding", "UTF8")]
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil {
            pairs.append(("connect_timeout", String(defaultConnectTimeout)))
        }
        if !connectionString.isEmpty {
            pairs.append(("dbname", connectionString))
        }
        return pairs
    }

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
