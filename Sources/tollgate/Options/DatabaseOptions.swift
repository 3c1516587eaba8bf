import ArgumentParser
import Foundation
import Logging
import TollgateCore
import TollgatePostgres
import TollgateServer

/// `--database` and `--data-dir`, shared by every command that touches the database.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "PostgreSQL to use: a libpq connection string or URL (default: $TOLLGATE_DATABASE_URL, else the embedded cluster).",
            valueName: "url"))
    var database: String?

    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp(
            "Where the embedded cluster keeps its files (default: $TOLLGATE_DATA_DIR/postgres, ~/.local/share/tollgate/postgres, or /var/lib/tollgate/postgres as root).",
            valueName: "path"))
    var dataDirectory: String?

    @Flag(name: .long, help: "Use the PG* environment variables (PGHOST, PGDATABASE, ...) instead of the embedded cluster.")
    var pgEnvironment = false

    @Option(
        name: .customLong("migration-database"),
        help: ArgumentHelp(
            "The owner role's connection, which migrates and grants the --database role its privileges (default: $TOLLGATE_MIGRATION_DATABASE_URL).",
            valueName: "url"))
    var migrationDatabase: String?

    @Flag(
        name: .long,
        help:
            "serve and stdio: run even when the database role is a superuser or owns tollgate's tables, with a warning (or $TOLLGATE_ALLOW_PRIVILEGED_ROLE=1)."
    )
    var allowPrivilegedRole = false

    func validate() throws {
        if pgEnvironment && database != nil {
            throw ValidationError("--pg-environment and --database both say which database to use; give one of them")
        }
        if let database, database.utf8.contains(0) || database.count > 4096 {
            throw ValidationError("--database must be a connection string or URL of at most 4096 characters")
        }
        if let migrationDatabase, migrationDatabase.utf8.contains(0) || migrationDatabase.count > 4096 {
            throw ValidationError("--migration-database must be a connection string or URL of at most 4096 characters")
        }
    }

    var connector: DatabaseConnector {
        let environment = ProcessInfo.processInfo.environment
        var connectionString = database ?? environment["TOLLGATE_DATABASE_URL"]
        // An empty libpq connection string means "from the PG* variables"; DatabaseConnector reads a nil one
        // as "embedded", so pass a harmless explicit keyword instead.
        if pgEnvironment { connectionString = "application_name=tollgate" }
        let dataDirectory = self.dataDirectory.map { URL(fileURLWithPath: $0).appendingPathComponent("postgres") }
        var connector = DatabaseConnector(connectionString: connectionString, dataDirectory: dataDirectory)
        connector.migrationConnectionString = migrationDatabase ?? environment["TOLLGATE_MIGRATION_DATABASE_URL"]
        return connector
    }

    /// The connector of a gateway (`serve`, `stdio`): it refuses a database role that could rewrite the log, unless
    /// told to allow it.
    var gatewayConnector: DatabaseConnector {
        var connector = self.connector
        let allowed =
            allowPrivilegedRole
            || ["1", "true", "yes"].contains(ProcessInfo.processInfo.environment["TOLLGATE_ALLOW_PRIVILEGED_ROLE"]?.lowercased() ?? "")
        connector.privilegedRole = allowed ? .warn : .refuse
        return connector
    }

    /// A gateway's connector with the configuration's `database` and `data_dir` filled in where the command line and
    /// the environment left them open (they win over the file): what `serve`, `stdio` and `doctor` open.
    func gatewayConnector(for config: GatewayConfig?) -> DatabaseConnector {
        var connector = gatewayConnector
        if connector.connectionString == nil, let configured = config?.database { connector.connectionString = configured }
        if dataDirectory == nil, let directory = config?.dataDirectory {
            connector.dataDirectory = URL(fileURLWithPath: directory).appendingPathComponent("postgres")
        }
        return connector
    }
}

extension DatabaseOptions {
    /// Opens the database, applies migrations, runs `body` with the client and an event store, and closes everything
    /// whether `body` succeeds or throws: the frame of every command that reads or writes the database.
    func run<T: Sendable>(logger: Logger, _ body: (PostgresClient, EventStore) async throws -> T) async throws -> T {
        let open = try await connector.open(logger: logger)
        let store = EventStore(client: open.client, logger: logger)
        do {
            try await Migrator(logger: logger).migrate(open.client)
            let result = try await body(open.client, store)
            store.stop()
            await open.close()
            return result
        } catch {
            store.stop()
            await open.close()
            throw error
        }
    }
}

/// The log output of every command, to standard error. The level comes from `--log-level`, else `TOLLGATE_LOG_LEVEL`,
/// else the command's own default: `info` for the gateways (`serve`, `stdio`), `warning` for every other command, so
/// that their output is the answer alone (a database command's "connected" lines are `info`).
struct LoggingOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "trace, debug, info, notice, warning, error or critical (default: $TOLLGATE_LOG_LEVEL, else info for serve and stdio, warning for the rest).",
            valueName: "level"))
    var logLevel: Logger.Level?

    /// The level asked for on the command line or in the environment, if any.
    var requestedLevel: Logger.Level? {
        logLevel ?? ProcessInfo.processInfo.environment["TOLLGATE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
    }

    /// A command's logger: text lines, at the requested level or `warning`.
    func makeLogger(_ label: String) -> Logger {
        makeLogger(label, defaultLevel: .warning, format: .text)
    }

    /// A gateway's logger: the requested level, else the configuration's `logging.level`, else `defaultLevel`; lines
    /// in the configuration's `logging.format`.
    func makeLogger(_ label: String, defaultLevel: Logger.Level, format: LogFormat) -> Logger {
        var logger =
            switch format {
            case .text: Logger(label: label) { StandardErrorLogHandler(label: $0) }
            case .json: Logger(label: label) { JSONLogHandler(label: $0) }
            }
        logger.logLevel = requestedLevel ?? defaultLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `StreamLogHandler`'s lines on standard error, with the metadata formatted only when a line is written.
/// `StreamLogHandler` formats all of its metadata each time a value is set, and the HTTP server sets one on every
/// request (its id), whether anything is logged or not: that was 2% of the gateway's CPU under load.
struct StandardErrorLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Metadata values are written with their invisible characters escaped (line breaks, controls, bidi controls):
    /// a tool name or an upstream's error text cannot start a forged log line or reorder what a reader sees.
    func log(event: LogEvent) {
        var line = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
        line.logLevel = logLevel
        line.metadata = metadata.mapValues(Self.visible)
        var event = event
        event.metadata = event.metadata?.mapValues(Self.visible)
        line.log(event: event)
    }

    static func visible(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(text.escapingInvisibles())
        case .stringConvertible(let value): .string(value.description.escapingInvisibles())
        case .array(let values): .array(values.map(visible))
        case .dictionary(let members): .dictionary(members.mapValues(visible))
        }
    }
}
