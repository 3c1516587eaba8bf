/// What went wrong talking to PostgreSQL, with what the caller can do about it.
///
/// Server errors carry the SQLSTATE and the server's own message, detail and hint. `description` is written for
/// the person reading a log line: it names the failure and, where one exists, the fix.
public enum PostgresError: Error, Sendable, Equatable {
    /// The server could not be reached or refused the connection (bad address, stopped server, bad credentials).
    case connectionFailed(message: String)
    /// An open connection broke (server restarted, backend terminated, network lost). Open a new one and retry.
    case connectionLost(message: String)
    /// The server rejected a statement.
    case server(ServerError)
    /// The pool had no free connection within its wait timeout.
    case poolTimeout(waited: Duration, maxConnections: Int)
    /// The pool was shut down.
    case poolClosed
    /// A value in a result row could not be decoded to the type asked for.
    case decoding(column: String, type: String, value: String)
    /// Something libpq reported that fits none of the above.
    case client(message: String)

    /// A statement's failure as the server reported it.
    public struct ServerError: Sendable, Equatable {
        /// The five-character SQLSTATE, e.g. `23505` for a unique violation.
        public var sqlState: String
        public var message: String
        public var detail: String?
        public var hint: String?
        public var constraint: String?
    }

    /// The SQLSTATE of a server error, `nil` for client-side failures.
    public var sqlState: String? {
        if case .server(let error) = self { return error.sqlState }
        return nil
    }

    /// Whether retrying on a fresh connection may succeed.
    public var isConnectionProblem: Bool {
        switch self {
        case .connectionFailed, .connectionLost, .poolTimeout: return true
        case .server(let error): return error.sqlState.hasPrefix("08") || error.sqlState.hasPrefix("57P")
        default: return false
        }
    }
}

extension PostgresError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .connectionFailed(let message):
            return "could not connect to PostgreSQL: \(message.trimmed). "
                + "Check the connection string (or the PG* variables), that the server is running, and the credentials."
        case .connectionLost(let message):
            return "the connection to PostgreSQL was lost: \(message.trimmed). The operation may be retried on a new connection."
        case .server(let error):
            var text = "PostgreSQL error \(error.sqlState): \(error.message)"
            if let detail = error.detail { text += " (\(detail))" }
            if let hint = error.hint { text += ". Hint: \(hint)" }
            return text
        case .poolTimeout(let waited, let maxConnections):
            return "no database connection became free within \(waited) (all \(maxConnections) in use). "
                + "Raise the pool size or look for slow queries."
        case .poolClosed:
            return "the database connection pool is shut down"
        case .decoding(let column, let type, let value):
            return "column \(column) holds \"\(value.prefix(80))\", which is not a valid \(type)"
        case .client(let message):
            return "libpq: \(message.trimmed)"
        }
    }
}

extension String {
    fileprivate var trimmed: String {
        var text = self
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
