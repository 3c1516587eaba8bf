import Foundation
import Logging
import Synchronization
import TollgatePostgres

/// The PostgreSQL server the tests use: a throw-away embedded cluster in `/tmp`, started once per test process
/// (durability settings off, for speed) and stopped when the process exits. Set `TOLLGATE_TEST_DATABASE_URL`
/// to use an existing server instead (its database must allow CREATE DATABASE).
public enum TestCluster {
    private static let state = Mutex<Result<PostgresConfiguration, any Error>?>(nil)
    nonisolated(unsafe) private static var cluster: EmbeddedPostgres?
    private static let counter = Atomic<Int>(0)

    /// Connection settings for the cluster's `tollgate` database, starting the cluster on first use.
    public static func configuration() throws -> PostgresConfiguration {
        try state.withLock { state -> Result<PostgresConfiguration, any Error> in
            if let state { return state }
            let result = Result { try startCluster() }
            state = result
            return result
        }.get()
    }

    /// The cluster's data (and socket) directory, or `nil` when tests use an external server.
    public static var dataDirectory: URL? { cluster?.dataDirectory }

    /// A new, empty database with every migration applied; returns its connection settings.
    public static func freshDatabase(migrated: Bool = true) async throws -> PostgresConfiguration {
        let base = try configuration()
        let name = "t\(getpid())_\(counter.wrappingAdd(1, ordering: .relaxed).newValue)"
        let admin = try PostgresConnection.connect(base)
        defer { admin.close() }
        try admin.execute("DROP DATABASE IF EXISTS \(name)")
        try admin.execute("CREATE DATABASE \(name)")
        let configuration = PostgresConfiguration(base.connectionString + " dbname=\(name)")
        if migrated {
            let client = PostgresClient(configuration: configuration, options: .init(maxConnections: 1))
            try await Migrator(logger: Logger(label: "test")).migrate(client)
            await client.shutdown()
        }
        return configuration
    }

    private static func startCluster() throws -> PostgresConfiguration {
        if let url = ProcessInfo.processInfo.environment["TOLLGATE_TEST_DATABASE_URL"], !url.isEmpty {
            return PostgresConfiguration(url)
        }
        let directory = URL(fileURLWithPath: "/tmp/tollgate-test-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        var settings = EmbeddedPostgres.Settings()
        settings.unsafeFastMode = true
        let embedded = EmbeddedPostgres(dataDirectory: directory, settings: settings, logger: Logger(label: "test-cluster"))
        let configuration = try embedded.start()
        cluster = embedded
        atexit {
            if let cluster = TestCluster.cluster {
                try? cluster.stop(immediate: true)
                try? FileManager.default.removeItem(at: cluster.dataDirectory)
            }
        }
        return configuration
    }
}

/// `Result(catching:)` for async work.
public func attempt<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
