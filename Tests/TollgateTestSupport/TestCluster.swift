import Foundation
import Logging
import Synchronization
import TollgatePostgres

/// The PostgreSQL server the tests use: a throw-away embedded cluster in `/tmp`, started once per test process
/// (durability settings off, for speed) and stopped when the process exits. Set `TOLLGATE_TEST_DATABASE_URL`
/// to use an existing server instead (its database must allow CREATE DATABASE).
public enum TestCluster {
    /// The owner's (who migrates and owns everything) and the runtime role's (what gateways and stores run as) settings.
    struct Roles: Sendable {
        var owner: PostgresConfiguration
        var runtime: PostgresConfiguration
    }

    private static let state = Mutex<Result<Roles, any Error>?>(nil)
    nonisolated(unsafe) private static var cluster: EmbeddedPostgres?
    private static let counter = Atomic<Int>(0)

    /// The owner's connection settings for the cluster's `tollgate` database, starting the cluster on first use. The
    /// owner may do anything (create databases, alter tables past the triggers); gateways run as the runtime role.
    public static func configuration() throws -> PostgresConfiguration { try roles().owner }

    static func roles() throws -> Roles {
        try state.withLock { state -> Result<Roles, any Error> in
            if let state { return state }
            let result = Result { try startCluster() }
            state = result
            return result
        }.get()
    }

    /// The owner's settings for the database that `configuration` (from `freshDatabase`) names.
    public static func owner(of configuration: PostgresConfiguration) throws -> PostgresConfiguration {
        PostgresConfiguration(try roles().owner.connectionString + " dbname=\(databaseName(configuration))")
    }

    /// The runtime role's settings for the database that `configuration` names.
    public static func runtime(of configuration: PostgresConfiguration) throws -> PostgresConfiguration {
        PostgresConfiguration(try roles().runtime.connectionString + " dbname=\(databaseName(configuration))")
    }

    /// The runtime role's name.
    public static var runtimeRole: String {
        ProcessInfo.processInfo.environment["TOLLGATE_TEST_DATABASE_URL"].map { _ in externalRuntimeRole } ?? "tollgate_runtime"
    }
    static let externalRuntimeRole = "tollgate_test_runtime"

    static func databaseName(_ configuration: PostgresConfiguration) -> String {
        configuration.connectionString.components(separatedBy: "dbname=").last?.components(separatedBy: " ").first ?? ""
    }

    /// The cluster's data (and socket) directory, or `nil` when tests use an external server.
    public static var dataDirectory: URL? { cluster?.dataDirectory }

    /// A new, empty database with every migration applied, and the runtime role granted its privileges: returns the
    /// runtime role's connection settings, so gateways and stores under test prove that those privileges are enough.
    /// Not migrated, it returns the owner's settings (who else would migrate it); `owner(of:)` gives the owner's anyway.
    public static func freshDatabase(migrated: Bool = true) async throws -> PostgresConfiguration {
        let roles = try roles()
        let name = "t\(getpid())_\(counter.wrappingAdd(1, ordering: .relaxed).newValue)"
        let admin = try PostgresConnection.connect(roles.owner)
        defer { admin.close() }
        try admin.execute("DROP DATABASE IF EXISTS \(name)")
        try admin.execute("CREATE DATABASE \(name)")
        let owner = PostgresConfiguration(roles.owner.connectionString + " dbname=\(name)")
        guard migrated else { return owner }
        let client = PostgresClient(configuration: owner, options: .init(maxConnections: 1))
        do {
            let migrator = Migrator(logger: Logger(label: "test"))
            try await migrator.migrate(client)
            try await migrator.grantRuntime(runtimeRole, on: client)
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
        return PostgresConfiguration(roles.runtime.connectionString + " dbname=\(name)")
    }

    private static func startCluster() throws -> Roles {
        if let url = ProcessInfo.processInfo.environment["TOLLGATE_TEST_DATABASE_URL"], !url.isEmpty {
            // A runtime role of the tests' own, with a fresh password each run.
            let admin = try PostgresConnection.connect(PostgresConfiguration(url))
            defer { admin.close() }
            let password = UUID().uuidString.replacingOccurrences(of: "-", with: "")
            try admin.execute(
                """
                DO $$ BEGIN
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(externalRuntimeRole)') THEN CREATE ROLE \(externalRuntimeRole) LOGIN; END IF;
                END $$;
                ALTER ROLE \(externalRuntimeRole) LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '\(password)'
                """)
            return Roles(owner: PostgresConfiguration(url), runtime: PostgresConfiguration(url + " user=\(externalRuntimeRole) password=\(password)"))
        }
        let directory = URL(fileURLWithPath: "/tmp/tollgate-test-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        var settings = EmbeddedPostgres.Settings()
        settings.unsafeFastMode = true
        let embedded = EmbeddedPostgres(dataDirectory: directory, settings: settings, logger: Logger(label: "test-cluster"))
        let owner = try embedded.start()
        cluster = embedded
        atexit {
            if let cluster = TestCluster.cluster {
                try? cluster.stop(immediate: true)
                try? FileManager.default.removeItem(at: cluster.dataDirectory)
            }
        }
        return Roles(owner: owner, runtime: embedded.runtimeConfiguration)
    }
}

/// `Result(catching:)` for async work.
public func attempt<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
