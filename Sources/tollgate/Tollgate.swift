import ArgumentParser
import Foundation

/// The `tollgate` command.
struct Tollgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "A policy gateway for MCP tool calls: allow, deny, rate-limit or hold each call for approval.",
        discussion: """
            Tollgate stands between AI agents and the MCP servers they use. Every tool call is decided by a policy \
            and recorded in an append-only event log in PostgreSQL.

            With no database configured, Tollgate runs its own PostgreSQL cluster (the embedded database) in \
            ~/.local/share/tollgate/postgres, or /var/lib/tollgate/postgres when run as root.

            Start with `tollgate serve`, then `tollgate events tail --follow` in another terminal.
            """,
        version: "0.1.0",
        subcommands: [
            ServeCommand.self, StdioCommandLine.self, ToolsCommand.self, InventoryCommand.self, KeysCommand.self, MigrateCommand.self,
            EventsCommand.self, PolicyCommand.self, ApprovalsCommand.self, AuditCommand.self, ProjectionsCommand.self,
            WebhooksCommand.self, ConfigCommand.self, DoctorCommand.self,
        ]
    )
}
