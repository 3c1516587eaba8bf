import Foundation
import Logging
import TollgatePostgres

/// Opens the database every command works on: the configured one (a libpq connection string or URL), or
/// else the embedded cluster, which it starts when it is not running.
///
/// Two roles: the owner migrates (and grants the runtime role its privileges), the runtime role is what the returned
/// client connects as. With the embedded cluster both are known; with an external database the owner's connection is
/// `migrationConnectionString` (`--migration-database`), and without it nothing is migrated here (the caller's
/// `Migrator` then only checks, or migrates as the one role it has).
///
/// ```swift
/// let database = try await DatabaseConnector(connectionString: nil, dataDirectory: nil).open(logger: logger)
/// defer { await database.close() }
/// ```
public struct DatabaseConnector: Sendable {
    /// What to do when the role the client connects as could rewrite the log: a superuser, a role that may create roles
    /// or bypass row security, or the owner (or a member of the owner) of tollgate's objects.
    public enum PrivilegedRole: Sendable, Equatable {
        /// Commands run by the operator (migrate, audit, projections): nothing to say.
        case accept
        /// A gateway told to run anyway (`--allow-privileged-role`): a warning at start.
        case warn
        /// A gateway (`serve`, `stdio`): refuse to start, naming the risk and the fix.
        case refuse
    }

    /// A libpq connection string or URL for the runtime role; `nil` or empty means the embedded cluster.
    public var connectionString: String?
    /// A libpq connection string or URL for the owner role, which migrates; `nil` or empty: none.
    public var migrationConnectionString: String?
    /// The embedded cluster's folder; `nil` means `EmbeddedPostgres.defaultDataDirectory()`.
    public var dataDirectory: URL?
    public var maxConnections: Int
    public var privilegedRole: PrivilegedRole = .accept

    public init(connectionString: String?, dataDirectory: URL?, maxConnections: Int = 16) {
        self.connectionString = connectionString
        self.dataDirectory = dataDirectory
        self.maxConnections = maxConnections
    }

    /// Connects (starting the embedded cluster if that is the database), migrates as the owner when it knows the owner,
    /// and checks the server answers and the runtime role is not privileged (per `privilegedRole`).
    public func open(logger: Logger) async throws -> OpenDatabase {
        var embedded: EmbeddedPostgres?
        let configuration: PostgresConfiguration
        var owner: PostgresConfiguration?
        var runtimeRole: String?
        if let connectionString, !connectionString.isEmpty {
            configuration = PostgresConfiguration(connectionString)
            if let migration = migrationConnectionString, !migration.isEmpty { owner = PostgresConfiguration(migration) }
        } else {
            let cluster = EmbeddedPostgres(
                dataDirectory: dataDirectory ?? EmbeddedPostgres.defaultDataDirectory(),
                logger: logger)
            owner = try cluster.start()
            configuration = cluster.runtimeConfiguration
            runtimeRole = cluster.settings.runtimeUser
            embedded = cluster
        }
        let client = PostgresClient(configuration: configuration, options: .init(maxConnections: maxConnections), logger: logger)
        do {
            let roles = RoleStore(client: client)
            let name = try await roles.currentRole()
            if let owner {
                try await migrate(owner: owner, runtimeRole: runtimeRole ?? name, logger: logger)
            }
            let reasons = Self.reasons(try await roles.privileges())
            if !reasons.isEmpty {
                switch privilegedRole {
                case .accept: break
                case .warn:
                    logger.warning(
                        "the gateway's database role could rewrite the log",
                        metadata: ["role": "\(name)", "because": "\(reasons.joined(separator: "; "))"])
                case .refuse:
                    throw DatabaseRoleError.privileged(role: name, reasons: reasons)
                }
            }
        } catch {
            await client.shutdown()
            try? embedded?.stopIfStarted()
            throw error
        }
        logger.info(
            "connected to PostgreSQL", metadata: ["database": "\(embedded.map { "embedded at \($0.dataDirectory.path)" } ?? configuration.redacted)"])
        return OpenDatabase(client: client, embedded: embedded)
    }

    /// Applies the migrations as the owner and grants the runtime role its privileges (unless it is the owner itself,
    /// which the privilege check then reports).
    func migrate(owner: PostgresConfiguration, runtimeRole: String, logger: Logger) async throws {
        let client = PostgresClient(configuration: owner, options: .init(maxConnections: 1), logger: logger)
        do {
            let migrator = Migrator(logger: logger)
            let applied = try await migrator.migrate(client)
            if !applied.isEmpty { logger.info("database migrated", metadata: ["applied": "\(applied.joined(separator: ", "))"]) }
            let ownerRole = try await RoleStore(client: client).currentRole()
            if ownerRole != runtimeRole { try await migrator.grantRuntime(runtimeRole, on: client) }
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }

    /// Applies the migrations with the owner's connection (`migrationConnectionString`, else `connectionString`, else the
    /// embedded cluster's owner) and grants `grantRuntime` (the embedded cluster's runtime role when nil there) its
    /// privileges: `tollgate migrate`. Returns the migrations applied.
    public func migrateAsOwner(grantRuntime: String?, logger: Logger) async throws -> [String] {
        var embedded: EmbeddedPostgres?
        let owner: PostgresConfiguration
        var runtimeRole = grantRuntime
        if let migration = migrationConnectionString, !migration.isEmpty {
            owner = PostgresConfiguration(migration)
        } else if let connectionString, !connectionString.isEmpty {
            owner = PostgresConfiguration(connectionString)
        } else {
            let cluster = EmbeddedPostgres(dataDirectory: dataDirectory ?? EmbeddedPostgres.defaultDataDirectory(), logger: logger)
            owner = try cluster.start()
            runtimeRole = runtimeRole ?? cluster.settings.runtimeUser
            embedded = cluster
        }
        defer { try? embedded?.stopIfStarted() }
        let client = PostgresClient(configuration: owner, options: .init(maxConnections: 1), logger: logger)
        do {
            let migrator = Migrator(logger: logger)
            let applied = try await migrator.migrate(client)
            if let runtimeRole { try await migrator.grantRuntime(runtimeRole, on: client) }
            await client.shutdown()
            return applied
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// What makes a role privileged, in words.
    static func reasons(_ privileges: RoleStore.Privileges) -> [String] {
        var reasons: [String] = []
        if privileges.isSuperuser { reasons.append("it is a superuser") }
        if privileges.mayCreateRoles { reasons.append("it may create roles (CREATEROLE)") }
        if privileges.bypassesRowSecurity { reasons.append("it bypasses row security (BYPASSRLS)") }
        if privileges.ownsSchema || privileges.ownsTables {
            reasons.append("it owns tollgate's schema or tables (or is a member of their owner)")
        }
        if !privileges.schemaExists { reasons.append("the database has no tollgate schema yet (migrate it as the owner role first)") }
        return reasons
    }
}

/// The gateway's database role could rewrite the log.
public enum DatabaseRoleError: Error, CustomStringConvertible, Equatable {
    case privileged(role: String, reasons: [String])

    public var description: String {
        switch self {
        case .privileged(let role, let reasons):
            return "the gateway would run as database role \(role), which could rewrite the event log and approvals "
                + "(disable the append-only triggers, change seals, mark approvals approved) because \(reasons.joined(separator: "; ")); "
                + "a process beside the gateway that learns its connection (a stdio server's shell tool, say) could do the same. "
                + "Run it as a runtime role instead: create one (CREATE ROLE tollgate_runtime LOGIN PASSWORD '...'), "  // not SQL: advice
                + "give this role's URL as --migration-database (TOLLGATE_MIGRATION_DATABASE_URL) and the runtime role's as --database "
                + "(serve migrates as the first and grants the second), or run `tollgate migrate --grant-runtime tollgate_runtime`. "
                + "--allow-privileged-role (TOLLGATE_ALLOW_PRIVILEGED_ROLE=1) starts anyway, with a warning. See docs/configuration.md."
        }
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
