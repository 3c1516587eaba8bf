import Foundation
import Logging
import TollgatePostgres

/// Opens the database every command works on: the configured one (a libpq connection string or URL), or
/// else the embedded cluster, which it starts when it is not running.
///
/// ```swift
/// let database = try await DatabaseConnector(connectionString: nil, dataDirectory: nil).open(logger: logger)
/// defer { await database.close() }
/// ```
public struct DatabaseConnector: Sendable {
    /// A libpq connection string or URL; `nil` or empty means the embedded cluster.
    public var connectionString: String?
    /// The embedded cluster's folder; `nil` means `EmbeddedPostgres.defaultDataDirectory()`.
    public var dataDirectory: URL?
    public var maxConnections: Int

    public init(connectionString: String?, dataDirectory: URL?, maxConnections: Int = 16) {
        self.connectionString = connectionString
        self.dataDirectory = dataDirectory
        self.maxConnections = maxConnections
    }

    /// Connects (starting the embedded cluster if that is the database), and checks the server answers.
    public func open(logger: Logger) async throws -> OpenDatabase {
        var embedded: EmbeddedPostgres?
        let configuration: PostgresConfiguration
        if let connectionString, !connectionString.isEmpty {
            configuration = PostgresConfiguration(connectionString)
        } else {
            let cluster = EmbeddedPostgres(
                dataDirectory: dataDirectory ?? EmbeddedPostgres.defaultDataDirectory(),
                logger: logger)
            configuration = try cluster.start()
            embedded = cluster
        }
        let client = PostgresClient(configuration: configuration, options: .init(maxConnections: maxConnections), logger: logger)
        do {
            try await client.query("SELECT 1")
        } catch {
            await client.shutdown()
            try? embedded?.stopIfStarted()
            throw error
        }
        logger.info(
            "connected to PostgreSQL", metadata: ["database": "\(embedded.map { "embedded at \($0.dataDirectory.path)" } ?? configuration.redacted)"])
        return OpenDatabase(client: client, embedded: embedded)
    }
}

/// A connected database, and the embedded cluster behind it if this process started one.
public struct OpenDatabase: Sendable {
    public let client: PostgresClient
    public let embedded: EmbeddedPostgres?

    /// Closes the pool, and stops the embedded cluster if this process started it.
    public func close() async {
        await client.shutdown()
        try? embedded?.stopIfStarted()
    }
}
