import ArgumentParser
import TollgatePostgres
import TollgateServer

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the database migrations that have not been applied yet, as the owner role.",
        discussion: """
            Migrations are the numbered SQL files of sql/, compiled into tollgate. Each runs in its own transaction \
            and is recorded in tollgate.schema_migrations; running this twice, or from two machines at once, is \
            safe. `tollgate serve` does the same at start when it knows the owner (the embedded cluster, or \
            --migration-database).

            The connection is the owner's: --migration-database (TOLLGATE_MIGRATION_DATABASE_URL), else --database, \
            else the embedded cluster's owner. --grant-runtime ROLE then gives ROLE exactly what the gateway needs \
            (and no more); later migrations grant it what they add. The embedded cluster's runtime role is granted \
            without asking.

            Examples:
              tollgate migrate
              tollgate migrate --database postgresql://tollgate_owner@db/tollgate --grant-runtime tollgate_runtime
            """
    )

    @Option(name: .customLong("grant-runtime"), help: ArgumentHelp("A role to give the gateway's runtime privileges.", valueName: "role"))
    var grantRuntime: String?

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let grantRuntime, grantRuntime.isEmpty || grantRuntime.count > 63 || grantRuntime.utf8.contains(0) {
            throw ValidationError("--grant-runtime must be a role name of 1 to 63 characters")
        }
    }

    func run() async throws {
        let logger = logging.makeLogger("tollgate")
        let applied = try await database.connector.migrateAsOwner(grantRuntime: grantRuntime, logger: logger)
        print(applied.isEmpty ? "The database is up to date." : "Applied \(applied.count) migration(s): \(applied.joined(separator: ", "))")
        if let grantRuntime { print("Granted the runtime privileges to \(grantRuntime).") }
    }
}
