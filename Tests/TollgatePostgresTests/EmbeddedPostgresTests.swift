import Foundation
import TollgateTestSupport
import XCTest

@testable import TollgatePostgres

final class EmbeddedPostgresTests: XCTestCase {
    func testMissingServerProgramsNameThePackageToInstall() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertThrowsError(try EmbeddedPostgresProbe.find(in: empty.path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("apt-get install postgresql"), text)
            XCTAssertTrue(text.contains("TOLLGATE_PG_BINDIR"), text)
        }
    }

    func testDefaultDataDirectoryFollowsTheEnvironment() {
        XCTAssertEqual(
            EmbeddedPostgres.defaultDataDirectory(environment: ["TOLLGATE_DATA_DIR": "/srv/tg"]).path, "/srv/tg/postgres")
        if geteuid() == 0 {
            XCTAssertEqual(EmbeddedPostgres.defaultDataDirectory(environment: ["HOME": "/root"]).path, "/var/lib/tollgate/postgres")
        } else {
            XCTAssertEqual(
                EmbeddedPostgres.defaultDataDirectory(environment: ["HOME": "/home/ann"]).path, "/home/ann/.local/share/tollgate/postgres")
        }
    }

    func testARunningClusterIsReusedAndLeftRunningByItsGuest() async throws {
        _ = try TestCluster.configuration()
        guard let directory = TestCluster.dataDirectory else { throw XCTSkip("tests use an external server") }
        let guest = EmbeddedPostgres(dataDirectory: directory)
        let configuration = try guest.start()
        XCTAssertFalse(guest.startedByUs)
        try guest.stopIfStarted()
        let connection = try PostgresConnection.connect(configuration)
        XCTAssertEqual(try connection.query("SELECT 1")[0].decode(Int.self, 0), 1)
        connection.close()
    }

    func testAFreshClusterIsCreatedStartedAndStopped() async throws {
        let directory = URL(fileURLWithPath: "/tmp/tollgate-embedded-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        var settings = EmbeddedPostgres.Settings()
        settings.unsafeFastMode = true
        let cluster = EmbeddedPostgres(dataDirectory: directory, settings: settings)
        let configuration = try cluster.start()
        XCTAssertTrue(cluster.startedByUs)
        let connection = try PostgresConnection.connect(configuration)
        let listens = try connection.query("SHOW listen_addresses")[0].decode(String.self, 0)
        XCTAssertEqual(listens, "", "no TCP port")
        XCTAssertEqual(try connection.query("SELECT current_database()")[0].decode(String.self, 0), "tollgate")
        connection.close()
        try cluster.stopIfStarted()
        XCTAssertThrowsError(try PostgresConnection.connect(configuration))
        // Started again on the same directory: no second initdb, same data.
        let again = EmbeddedPostgres(dataDirectory: directory, settings: settings)
        try again.start()
        XCTAssertTrue(again.startedByUs)
        try again.stop(immediate: true)
    }

    /// Whether a connection as `user` with no password (and no password file) is refused, allowing the server a moment
    /// to read a pg_hba.conf it was just told to reload.
    func refusesWithoutPassword(_ cluster: EmbeddedPostgres, user: String) async throws -> Bool {
        let bare = PostgresConfiguration("host=\(cluster.dataDirectory.path) user=\(user) passfile=/nonexistent dbname=tollgate")
        for _ in 0..<50 {
            guard let connection = try? PostgresConnection.connect(bare) else { return true }
            connection.close()
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    func mode(_ path: String) -> (mode: mode_t, owner: uid_t) {
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0, path)
        return (info.st_mode & 0o777, info.st_uid)
    }

    func testEveryRoleNeedsItsPasswordAndOtherUsersReachNeitherTheSocketNorTheFiles() async throws {
        let directory = URL(fileURLWithPath: "/tmp/tollgate-embedded-pw-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        var settings = EmbeddedPostgres.Settings()
        settings.unsafeFastMode = true
        let cluster = EmbeddedPostgres(dataDirectory: directory, settings: settings)
        try cluster.start()
        defer { try? cluster.stop(immediate: true) }
        let isOwner = try await refusesWithoutPassword(cluster, user: "tollgate")
        let isRuntime = try await refusesWithoutPassword(cluster, user: "tollgate_runtime")
        XCTAssertTrue(isOwner && isRuntime, "no role connects without its password")
        XCTAssertThrowsError(
            try PostgresConnection.connect(
                PostgresConfiguration("host=\(directory.path) user=tollgate_runtime password=wrong passfile=/nonexistent dbname=tollgate")))

        let runtime = try PostgresConnection.connect(cluster.runtimeConfiguration)
        XCTAssertEqual(try runtime.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0].decode(Bool.self, 0), false)
        runtime.close()
        let owner = try PostgresConnection.connect(cluster.configuration)
        XCTAssertEqual(try owner.query("SHOW password_encryption")[0].decode(String.self, 0), "scram-sha-256")
        XCTAssertEqual(try owner.query("SELECT count(*) FROM pg_authid WHERE rolpassword LIKE 'SCRAM-SHA-256$%'")[0].decode(Int.self, 0), 2)
        owner.close()

        // The data directory holds the socket: only its user may enter it. The password files are the gateway's user's.
        XCTAssertEqual(mode(directory.path).mode, 0o700)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent(".s.PGSQL.5432").path))
        for file in [cluster.ownerPasswordFile, cluster.runtimePasswordFile] {
            XCTAssertEqual(mode(file.path).mode, 0o600, file.path)
            XCTAssertEqual(mode(file.path).owner, geteuid(), file.path)
        }
        let hba = try String(contentsOf: directory.appendingPathComponent("pg_hba.conf"), encoding: .utf8)
        XCTAssertFalse(hba.contains("trust"), hba)
    }

    func testAClusterThatTrustedItsSocketAsksForPasswordsAfterItsNextStart() async throws {
        let directory = URL(fileURLWithPath: "/tmp/tollgate-embedded-up-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        defer { try? FileManager.default.removeItem(at: directory) }
        var settings = EmbeddedPostgres.Settings()
        settings.unsafeFastMode = true
        let earlier = EmbeddedPostgres(dataDirectory: directory, settings: settings)
        try earlier.start()
        // Made as an earlier version made it: `initdb --auth-local=trust`, no runtime role, no password files, some data.
        let owner = try PostgresConnection.connect(earlier.configuration)
        try owner.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42); DROP ROLE tollgate_runtime; ALTER ROLE tollgate PASSWORD NULL")
        try "local all all trust\nhost all all 127.0.0.1/32 trust\n".write(
            to: directory.appendingPathComponent("pg_hba.conf"), atomically: false, encoding: .utf8)
        try owner.query("SELECT pg_reload_conf()")
        owner.close()
        try FileManager.default.removeItem(at: earlier.ownerPasswordFile)
        try FileManager.default.removeItem(at: earlier.runtimePasswordFile)
        try earlier.stop()

        let upgraded = EmbeddedPostgres(dataDirectory: directory, settings: settings)
        try upgraded.start()
        defer { try? upgraded.stop(immediate: true) }
        let refused = try await refusesWithoutPassword(upgraded, user: "tollgate")
        XCTAssertTrue(refused, "trust is gone")
        let connection = try PostgresConnection.connect(upgraded.configuration)
        XCTAssertEqual(try connection.query("SELECT x FROM kept")[0].decode(Int.self, 0), 42, "the data is kept")
        connection.close()
        let runtime = try PostgresConnection.connect(upgraded.runtimeConfiguration)
        runtime.close()
        XCTAssertEqual(mode(upgraded.runtimePasswordFile.path).mode, 0o600)
    }
}

/// Reaches the binary search with a controlled environment.
enum EmbeddedPostgresProbe {
    static func find(in folder: String) throws -> URL {
        // Only the explicit folder and an empty PATH: Debian's folder is skipped by pointing at a missing root.
        try EmbeddedPostgres.findBinaries(environment: ["TOLLGATE_PG_BINDIR": folder, "PATH": folder], debianRoot: folder + "/none")
    }
}
