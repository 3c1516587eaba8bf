import ArgumentParser
import TollgatePostgres
import TollgateServer

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the database migrations that have not been applied yet.",
        discussion: """
            Migrations are the numbered SQL files of sql/, compiled into tollgate. Each runs in its own transaction \
            and is recorded in tollgate.schema_migrations; running this twice, or from two machines at once, is \
            safe. `tollgate serve` does the same at start.
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.makeLogger("tollgate")
        let open = try await database.connector.open(logger: logger)
        do {
            let applied = try await Migrator(logger: logger).migrate(open.client)
            print(applied.isEmpty ? "The database is up to date." : "Applied \(applied.count) migration(s): \(applied.joined(separator: ", "))")
        } catch {
            await open.close()
            throw error
        }
        await open.close()
    }
}
