import Crypto

/// One numbered SQL file from `sql/`, compiled into the binary.
public struct Migration: Sendable, Hashable {
    /// The number the file name starts with: the order of application.
    public var version: Int
    /// The file name, e.g. `0001_event_log.sql`.
    public var name: String
    public var sql: String

    init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.version = Int(name.prefix { $0.isNumber }) ?? 0
        self.sql = String(decoding: bytes, as: UTF8.self)
    }

    /// SHA-256 of the text, hex: recorded when applied, compared on every later run.
    public var checksum: String {
        SHA256.hash(data: Array(sql.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

extension Migration {
    /// Every migration, in order. A new file in `sql/` is added here too; `MigrationTests` fails otherwise.
    public static let all: [Migration] = [
        Migration("0001_event_log.sql", PackageResources._001_event_log_sql),
        Migration("0002_stream_summaries.sql", PackageResources._002_stream_summaries_sql),
        Migration("0003_rate_windows.sql", PackageResources._003_rate_windows_sql),
        Migration("0004_approvals.sql", PackageResources._004_approvals_sql),
        Migration("0005_event_seals.sql", PackageResources._005_event_seals_sql),
        Migration("0006_webhooks.sql", PackageResources._006_webhooks_sql),
        Migration("0007_append_generic_plans.sql", PackageResources._007_append_generic_plans_sql),
        Migration("0008_append_set_based.sql", PackageResources._008_append_set_based_sql),
        Migration("0009_append_singles.sql", PackageResources._009_append_singles_sql),
        Migration("0010_reserve_and_append.sql", PackageResources._010_reserve_and_append_sql),
        Migration("0011_reserve_counter.sql", PackageResources._011_reserve_counter_sql),
        Migration("0012_runtime_role.sql", PackageResources._012_runtime_role_sql),
        Migration("0013_rebuild_rate_windows.sql", PackageResources._013_rebuild_rate_windows_sql),
        Migration("0014_append_horizon.sql", PackageResources._014_append_horizon_sql),
        Migration("0015_webhook_bursts.sql", PackageResources._015_webhook_bursts_sql),
        Migration("0016_ui_sessions.sql", PackageResources._016_ui_sessions_sql),
        Migration("0017_decision_minutes.sql", PackageResources._017_decision_minutes_sql),
        Migration("0018_tool_inventory.sql", PackageResources._018_tool_inventory_sql),
        Migration("0019_tool_inventory_pins.sql", PackageResources._019_tool_inventory_pins_sql),
    ]
}
