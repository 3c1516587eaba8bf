import Logging

/// Applies the migrations from `sql/` that a database has not seen yet, in order, each in its own transaction,
/// and records them in `tollgate.schema_migrations`.
///
/// Safe to run twice (applied migrations are skipped) and from several processes at once (a session-level
/// advisory lock serialises them; the second finds the work done).
public struct Migrator: Sendable {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        /// A migration's text differs from the one applied earlier.
        case changedAfterApplying(name: String, appliedChecksum: String, currentChecksum: String)
        /// The database has migrations this binary does not know: it is older than the schema.
        case unknownMigrations(versions: [Int])
        /// A migration's SQL failed; nothing of it was applied.
        case failed(name: String, error: PostgresError)
        /// The role connected may not apply what is missing (or may not read tollgate's schema at all): it is a runtime
        /// role, and the owner has to migrate and grant it.
        case notPermitted(role: String, missing: [String], error: PostgresError)

        public var description: String {
            switch self {
            case .changedAfterApplying(let name, _, _):
                return "migration \(name) was changed after it was applied to this database; "
                    + "restore the original file and put the change in a new numbered migration"
            case .unknownMigrations(let versions):
                return "the database has migrations \(versions.map(String.init).joined(separator: ", ")) that this tollgate "
                    + "binary does not know: it is older than the database schema; run a newer tollgate"
            case .failed(let name, let error):
                return "migration \(name) failed and was rolled back: \(error)"
            case .notPermitted(let role, let missing, let error):
                let what =
                    missing.isEmpty
                    ? "role \(role) may not read tollgate's schema (\(error))"
                    : "the database needs migration(s) \(missing.joined(separator: ", ")), which role \(role) may not apply (\(error))"
                return what + ". Migrate as the owner role and grant this one its privileges: "
                    + "`tollgate migrate --migration-database OWNER_URL --grant-runtime \(role)` "
                    + "(or give `serve` both --database and --migration-database); see docs/configuration.md"
            }
        }
    }

    /// An arbitrary constant that names our advisory lock ("tollgate" in ASCII, as a number).
    static let lockKey: Int64 = 0x746f_6c6c_6761_7465

    public let migrations: [Migration]
    let logger: Logger

    public init(migrations: [Migration] = Migration.all, logger: Logger = Logger(label: "tollgate.migrate")) {
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// Applies what is missing and returns the names of the migrations it applied (empty when up to date).
    @discardableResult
    public func migrate(_ client: PostgresClient) async throws -> [String] {
        let migrations = self.migrations
        let logger = self.logger
        return try await client.withConnection { connection in
            // A migration may take long (a table rewritten, a log folded) and wait for another process's migration or for
            // a running gateway's locks: no session time-outs while migrating; the connection's own are put back after.
            let saved = try connection.query(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), set_config('statement_timeout', '0', false), "
                    + "set_config('lock_timeout', '0', false)")[0]
            let (statementTimeout, lockTimeout) = (try saved.decode(String.self, 0), try saved.decode(String.self, 1))
            defer {
                _ = try? connection.query(
                    "SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false)", [statementTimeout, lockTimeout])
            }
            try connection.query("SELECT pg_advisory_lock($1)", [Self.lockKey])
            defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey]) }
            let role = (try? connection.query("SELECT current_user::text")[0].decode(String.self, 0)) ?? "?"
            func permitted<T>(missing: @autoclosure () -> [String], _ body: () throws -> T) throws -> T {
                do {
                    return try body()
                } catch let error as PostgresError where error.sqlState == "42501" {
                    throw Failure.notPermitted(role: role, missing: missing(), error: error)
                }
            }
            var applied: [Int: (name: String, checksum: String)] = [:]
            try permitted(missing: []) {
                // Only when it is missing: CREATE SCHEMA needs the CREATE privilege even when the schema exists, and a
                // runtime role has none.
                let exists = try connection.query("SELECT to_regclass('tollgate.schema_migrations') IS NOT NULL")[0].decode(Bool.self, 0)
                if !exists {
                    try connection.execute(
                        """
                        CREATE SCHEMA IF NOT EXISTS tollgate;
                        CREATE TABLE IF NOT EXISTS tollgate.schema_migrations (
                            version    int PRIMARY KEY,
                            name       text NOT NULL,
                            checksum   text NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT now()
                        )
                        """)
                }
                for row in try connection.query("SELECT version, name, checksum FROM tollgate.schema_migrations").rows {
                    applied[try row.decode(Int.self, 0)] = (try row.decode(String.self, 1), try row.decode(String.self, 2))
                }
            }
            let missing = migrations.filter { applied[$0.version] == nil }.map(\.name)
            let known = Set(migrations.map(\.version))
            let unknown = applied.keys.filter { !known.contains($0) }.sorted()
            if !unknown.isEmpty { throw Failure.unknownMigrations(versions: unknown) }
            var newlyApplied: [String] = []
            for migration in migrations {
                if let record = applied[migration.version] {
                    guard record.checksum == migration.checksum else {
                        throw Failure.changedAfterApplying(
                            name: migration.name, appliedChecksum: record.checksum, currentChecksum: migration.checksum)
                    }
                    continue
                }
                do {
                    try connection.transaction { connection in
                        try connection.execute(migration.sql)
                        try connection.query(
                            "INSERT INTO tollgate.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                            [migration.version, migration.name, migration.checksum])
                    }
                } catch let error as PostgresError where error.sqlState == "42501" {
                    throw Failure.notPermitted(role: role, missing: missing, error: error)
                } catch let error as PostgresError {
                    throw Failure.failed(name: migration.name, error: error)
                }
                logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
                newlyApplied.append(migration.name)
            }
            if !newlyApplied.isEmpty {
                // What the new migrations added is granted to the runtime roles granted before.
                try connection.execute(
                    """
                    DO $$ BEGIN
                        IF to_regprocedure('tollgate.grant_runtime(name)') IS NOT NULL THEN
                            PERFORM tollgate.grant_runtime(role_name) FROM tollgate.runtime_roles r
                            WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.role_name);
                        END IF;
                    END $$
                    """)
            }
            return newlyApplied
        }
    }

    /// Gives `role` exactly the privileges the gateway needs (`tollgate.grant_runtime`, migration 0012) and records it, so
    /// later migrations grant it what they add. Run as the owner, after `migrate`.
    public func grantRuntime(_ role: String, on client: PostgresClient) async throws {
        try await client.query("SELECT tollgate.grant_runtime($1)", [role])
        logger.info("granted the runtime privileges", metadata: ["role": "\(role)"])
    }
}
