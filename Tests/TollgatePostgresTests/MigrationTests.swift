import Foundation
import Logging
import TollgateTestSupport
import XCTest

@testable import TollgatePostgres

final class MigrationTests: XCTestCase {
    func testEverySQLFileIsListedInOrder() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../sql").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        XCTAssertFalse(files.isEmpty)
        XCTAssertEqual(Migration.all.map(\.name), files)
        XCTAssertEqual(Migration.all.map(\.version), Array(1...files.count))
        for migration in Migration.all {
            let onDisk = try String(contentsOf: folder.appendingPathComponent(migration.name), encoding: .utf8)
            XCTAssertEqual(migration.sql, onDisk, "\(migration.name) compiled into the binary differs from sql/")
        }
    }

    func testRunningTwiceAppliesNothingTheSecondTime() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase(migrated: false))
        defer { Task { await client.shutdown() } }
        let first = try await Migrator().migrate(client)
        XCTAssertEqual(first, Migration.all.map(\.name))
        let second = try await Migrator().migrate(client)
        XCTAssertEqual(second, [])
        let count = try await client.query("SELECT count(*) FROM tollgate.schema_migrations")[0].decode(Int.self, 0)
        XCTAssertEqual(count, Migration.all.count)
    }

    func testConcurrentMigratorsApplyEachMigrationOnce() async throws {
        let configuration = try await TestCluster.freshDatabase(migrated: false)
        let applied = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let client = PostgresClient(configuration: configuration, options: .init(maxConnections: 1))
                    defer { Task { await client.shutdown() } }
                    return try await Migrator().migrate(client)
                }
            }
            var all: [[String]] = []
            for try await names in group { all.append(names) }
            return all
        }
        XCTAssertEqual(applied.flatMap { $0 }.sorted(), Migration.all.map(\.name).sorted(), "each migration applied by exactly one process")
        let client = PostgresClient(configuration: configuration)
        defer { Task { await client.shutdown() } }
        let count = try await client.query("SELECT count(*) FROM tollgate.schema_migrations")[0].decode(Int.self, 0)
        XCTAssertEqual(count, Migration.all.count)
    }

    func testAChangedMigrationIsRefused() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        defer { Task { await client.shutdown() } }
        var edited = Migration.all
        edited[0].sql += "\n-- edited later\n"
        do {
            try await Migrator(migrations: edited).migrate(client)
            XCTFail("expected the changed migration to be refused")
        } catch let failure as Migrator.Failure {
            guard case .changedAfterApplying(let name, _, _) = failure else { return XCTFail("\(failure)") }
            XCTAssertEqual(name, Migration.all[0].name)
        }
    }

    func testAFailingMigrationLeavesNoTrace() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        defer { Task { await client.shutdown() } }
        var broken = Migration.all
        var bad = Migration.all[0]
        bad.version = 999
        bad.name = "0999_broken.sql"
        bad.sql = "CREATE TABLE tollgate.half_done (x int); SELECT * FROM no_such_table;"
        broken.append(bad)
        do {
            try await Migrator(migrations: broken).migrate(client)
            XCTFail("expected the migration to fail")
        } catch let failure as Migrator.Failure {
            XCTAssertTrue("\(failure)".contains("0999_broken.sql"), "\(failure)")
        }
        let leftovers = try await client.query("SELECT 1 FROM pg_tables WHERE schemaname = 'tollgate' AND tablename = 'half_done'")
        XCTAssertEqual(leftovers.rowCount, 0)
    }
}
