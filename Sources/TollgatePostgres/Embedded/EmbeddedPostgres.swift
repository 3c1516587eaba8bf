import Foundation
import Logging
import TollgateSystem

/// A private PostgreSQL cluster that Tollgate runs itself when no database is configured: `initdb` once into a
/// data directory, then `pg_ctl start` on a Unix socket in that directory with no TCP port, reused on the next
/// run, stopped on exit if this process started it.
///
/// ```swift
/// let cluster = EmbeddedPostgres(dataDirectory: EmbeddedPostgres.defaultDataDirectory())
/// let configuration = try cluster.start()   // PostgresConfiguration over the socket
/// defer { try? cluster.stopIfStarted() }
/// ```
///
/// PostgreSQL refuses to run as root. When Tollgate runs as root, the cluster runs as the unprivileged
/// `postgres` user (created by Debian's package) through `runuser`, and its default data directory is
/// `/var/lib/tollgate/postgres` (a home directory such as `/root` is closed to other users).
///
/// Two roles, each with a password (scram-sha-256 over the socket, nothing is trusted): the owner (`tollgate`, the
/// bootstrap superuser, which migrates and owns every object) and the runtime role (`tollgate_runtime`, which the
/// gateway runs as). Their passwords are made at the first start and kept in `owner.pgpass` and `runtime.pgpass` (libpq
/// password files, mode 0600, owned by the user tollgate runs as) in the data directory, which is also the socket's
/// directory and is mode 0700: other local users reach neither. A cluster made by an earlier version (`trust` on the
/// socket) is moved to this on its next start.
public final class EmbeddedPostgres: @unchecked Sendable {
    // Mutable state is touched only by start/stop, which the owner calls from one task.

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case binariesNotFound(searched: [String])
        case noUnprivilegedUser
        case commandFailed(command: String, status: Int32, output: String)
        case dataDirectoryUnusable(path: String, reason: String)
        /// The cluster asks for passwords, and the files that hold them are gone.
        case passwordFilesMissing(directory: String)

        public var description: String {
            switch self {
            case .binariesNotFound(let searched):
                return "PostgreSQL server programs (initdb, pg_ctl) were not found in \(searched.joined(separator: ", ")). "
                    + "Install them with `apt-get install postgresql` (Debian/Ubuntu), set TOLLGATE_PG_BINDIR to their "
                    + "folder, or configure an external database with --database / TOLLGATE_DATABASE_URL."
            case .noUnprivilegedUser:
                return "PostgreSQL cannot run as root and there is no `postgres` user to run it as. "
                    + "Install Debian's `postgresql` package (it creates the user), run tollgate as another user, "
                    + "or configure an external database with --database / TOLLGATE_DATABASE_URL."
            case .commandFailed(let command, let status, let output):
                return "`\(command)` failed with status \(status): \(output.suffix(2000))"
            case .dataDirectoryUnusable(let path, let reason):
                return "the embedded database directory \(path) cannot be used: \(reason)"
            case .passwordFilesMissing(let directory):
                return "the embedded cluster in \(directory) asks for passwords, and owner.pgpass or runtime.pgpass is missing "
                    + "there: restore them, or put `local all all trust` first in its pg_hba.conf, reload or restart the cluster, "
                    + "and start tollgate again (it makes new passwords and asks for them again)"
            }
        }
    }

    public struct Settings: Sendable {
        /// `fsync`, `synchronous_commit` and `full_page_writes` off: for throw-away test clusters only.
        public var unsafeFastMode = false
        public var database = "tollgate"
        /// The owner: the bootstrap superuser, which migrates and owns every object.
        public var user = "tollgate"
        /// The role the gateway runs as.
        public var runtimeUser = "tollgate_runtime"
        public init() {}
    }

    public let dataDirectory: URL
    public let settings: Settings
    let logger: Logger
    private(set) public var startedByUs = false

    public init(dataDirectory: URL, settings: Settings = Settings(), logger: Logger = Logger(label: "tollgate.embedded-postgres")) {
        self.dataDirectory = dataDirectory
        self.settings = settings
        self.logger = logger
    }

    /// `$TOLLGATE_DATA_DIR/postgres`, else `$XDG_DATA_HOME/tollgate/postgres` or `~/.local/share/tollgate/postgres`;
    /// as root, `/var/lib/tollgate/postgres`.
    public static func defaultDataDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let base = environment["TOLLGATE_DATA_DIR"], !base.isEmpty {
            return URL(fileURLWithPath: base).appendingPathComponent("postgres")
        }
        if geteuid() == 0 { return URL(fileURLWithPath: "/var/lib/tollgate/postgres") }
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("tollgate/postgres")
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".local/share/tollgate/postgres")
    }

    /// The owner's connection settings for the cluster's socket (its password from `owner.pgpass`).
    public var configuration: PostgresConfiguration { configuration(user: settings.user, passwordFile: ownerPasswordFile) }

    /// The runtime role's connection settings (its password from `runtime.pgpass`): what the gateway runs as.
    public var runtimeConfiguration: PostgresConfiguration { configuration(user: settings.runtimeUser, passwordFile: runtimePasswordFile) }

    /// The libpq password files (`*:*:*:user:password`, mode 0600) of the owner and of the runtime role.
    public var ownerPasswordFile: URL { dataDirectory.appendingPathComponent("owner.pgpass") }
    public var runtimePasswordFile: URL { dataDirectory.appendingPathComponent("runtime.pgpass") }

    func configuration(user: String, passwordFile: URL?, database: String? = nil) -> PostgresConfiguration {
        var text = "host=\(Self.quoted(dataDirectory.path)) user=\(Self.quoted(user))"
        if let passwordFile { text += " passfile=\(Self.quoted(passwordFile.path))" }
        // dbname last: callers may append another to pick a database of the cluster.
        return PostgresConfiguration(text + " dbname=\(database ?? settings.database)")
    }

    /// A libpq connection-string value, quoted when it needs it.
    static func quoted(_ value: String) -> String {
        if !value.isEmpty, !value.contains(where: { $0 == " " || $0 == "'" || $0 == "\\" || $0 == "=" }) { return value }
        return "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    var isRoot: Bool { geteuid() == 0 }

    /// Creates the cluster if needed, starts it unless it already runs, creates the database, and returns how to
    /// connect. Reuses a cluster left running by an earlier (or another) process.
    @discardableResult
    public func start() throws -> PostgresConfiguration {
        let binaries = try Self.findBinaries()
        try prepareDirectory()
        let path = dataDirectory.path
        if !FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path) {
            logger.info("creating the embedded PostgreSQL cluster", metadata: ["data_directory": "\(path)"])
            try run(
                binaries.appendingPathComponent("initdb").path,
                ["-D", path, "--auth-local=trust", "--auth-host=reject", "-U", settings.user, "-E", "UTF8", "--locale=C.UTF-8"])
        }
        if try isRunning(binaries) {
            logger.info("reusing the running embedded PostgreSQL cluster", metadata: ["data_directory": "\(path)"])
        } else {
            var options = "-c listen_addresses='' -c unix_socket_directories='\(path)' -c max_connections=200"
            if settings.unsafeFastMode { options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" }
            try run(
                binaries.appendingPathComponent("pg_ctl").path,
                ["-D", path, "-w", "-t", "60", "-l", dataDirectory.appendingPathComponent("server.log").path, "-o", options, "start"])
            startedByUs = true
            logger.info("started the embedded PostgreSQL cluster", metadata: ["data_directory": "\(path)"])
        }
        try requirePasswords()
        try createDatabaseIfMissing()
        return configuration
    }

    /// Stops the cluster if this object started it (a cluster another process started keeps running).
    public func stopIfStarted() throws {
        guard startedByUs else { return }
        try stop()
    }

    /// Stops the cluster (fast shutdown: open sessions are ended, committed work is kept).
    public func stop(immediate: Bool = false) throws {
        let binaries = try Self.findBinaries()
        try run(binaries.appendingPathComponent("pg_ctl").path, ["-D", dataDirectory.path, "-w", "-m", immediate ? "immediate" : "fast", "stop"])
        startedByUs = false
    }

    private func isRunning(_ binaries: URL) throws -> Bool {
        let (status, _) = try execute(binaries.appendingPathComponent("pg_ctl").path, ["-D", dataDirectory.path, "status"])
        return status == 0
    }

    /// The first line of a pg_hba.conf that this code wrote.
    static let hbaMarker = "# tollgate: every role needs its password"

    /// Makes the owner and runtime roles need their passwords, if the cluster does not already: makes the passwords
    /// (once; kept in the password files), sets them over the socket while it still trusts (a fresh cluster, or one
    /// an earlier version made), creates the runtime role, then rewrites pg_hba.conf and reloads. Each step can be
    /// repeated, so a start interrupted half-way finishes on the next.
    private func requirePasswords() throws {
        let hba = dataDirectory.appendingPathComponent("pg_hba.conf")
        let files = [ownerPasswordFile, runtimePasswordFile]
        if ((try? String(contentsOf: hba, encoding: .utf8)) ?? "").hasPrefix(Self.hbaMarker) {
            guard files.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }) else {
                throw Failure.passwordFilesMissing(directory: dataDirectory.path)
            }
            for file in files { chmod(file.path, 0o600) }
            return
        }
        logger.info("setting the embedded cluster's passwords", metadata: ["data_directory": "\(dataDirectory.path)"])
        let ownerPassword = try passwordFile(ownerPasswordFile, user: settings.user)
        let runtimePassword = try passwordFile(runtimePasswordFile, user: settings.runtimeUser)
        // Still `trust` here: the socket is in the data directory, which only this user (or postgres, as root) can enter.
        let admin = try PostgresConnection.connect(configuration(user: settings.user, passwordFile: nil, database: "postgres"))
        defer { admin.close() }
        let owner = settings.user.filter { $0 != "\"" && $0 != "'" }
        let runtime = settings.runtimeUser.filter { $0 != "\"" && $0 != "'" }
        try admin.execute(
            """
            SET password_encryption = 'scram-sha-256';
            ALTER ROLE "\(owner)" PASSWORD '\(ownerPassword)';
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(runtime)') THEN CREATE ROLE "\(runtime)" LOGIN; END IF;
            END $$;
            ALTER ROLE "\(runtime)" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '\(runtimePassword)'
            """)
        let text = """
            \(Self.hbaMarker) (scram-sha-256 over the Unix socket; no TCP).
            # The passwords are in owner.pgpass and runtime.pgpass beside this file.
            local all all scram-sha-256
            host  all all all reject

            """
        let temporary = dataDirectory.appendingPathComponent("pg_hba.conf.tollgate")
        do {
            try text.write(to: temporary, atomically: false, encoding: .utf8)
        } catch {
            throw Failure.dataDirectoryUnusable(path: dataDirectory.path, reason: "cannot write pg_hba.conf: \(error)")
        }
        chmod(temporary.path, 0o600)
        if isRoot, let user = getpwnam("postgres") { chown(temporary.path, user.pointee.pw_uid, user.pointee.pw_gid) }
        guard rename(temporary.path, hba.path) == 0 else {
            throw Failure.dataDirectoryUnusable(path: dataDirectory.path, reason: "cannot replace pg_hba.conf: \(String(cString: strerror(errno)))")
        }
        try admin.query("SELECT pg_reload_conf()")
        logger.info("the embedded cluster now asks every role for its password", metadata: ["data_directory": "\(dataDirectory.path)"])
    }

    /// The password in `file` (a libpq password file for `user`), made and written first if the file does not exist.
    /// Two processes starting at once agree on one: the file is created with `link`, which fails when it exists.
    private func passwordFile(_ file: URL, user: String) throws -> String {
        func read() -> String? {
            guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
            let password = text.split(separator: "\n").first.map { String($0.split(separator: ":").last ?? "") } ?? ""
            return password.isEmpty ? nil : password
        }
        if let existing = read() {
            chmod(file.path, 0o600)
            return existing
        }
        var bytes = [UInt8](repeating: 0, count: 24)
        guard getentropy(&bytes, bytes.count) == 0 else {
            throw Failure.dataDirectoryUnusable(path: dataDirectory.path, reason: "no randomness for a password")
        }
        let password = bytes.map { String(format: "%02x", $0) }.joined()
        let temporary = file.appendingPathExtension("\(getpid()).tmp")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw Failure.dataDirectoryUnusable(
                path: dataDirectory.path, reason: "cannot write \(file.lastPathComponent): \(String(cString: strerror(errno)))")
        }
        defer { unlink(temporary.path) }
        let line = Array("*:*:*:\(user):\(password)\n".utf8)
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        close(descriptor)
        guard written == line.count else {
            throw Failure.dataDirectoryUnusable(path: dataDirectory.path, reason: "cannot write \(file.lastPathComponent)")
        }
        _ = link(temporary.path, file.path)  // fails when another process got there first: then its password is the one
        guard let stored = read() else {
            throw Failure.dataDirectoryUnusable(path: dataDirectory.path, reason: "cannot read \(file.lastPathComponent) back")
        }
        return stored
    }

    private func createDatabaseIfMissing() throws {
        let admin = try PostgresConnection.connect(configuration(user: settings.user, passwordFile: ownerPasswordFile, database: "postgres"))
        defer { admin.close() }
        let exists = try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [settings.database]).rowCount == 1
        if !exists {
            do {
                try admin.execute("CREATE DATABASE \"\(settings.database.replacingOccurrences(of: "\"", with: ""))\"")
            } catch let error as PostgresError where error.sqlState == "42P04" {
                // Another process created it first.
            }
        }
    }

    private func prepareDirectory() throws {
        let fileManager = FileManager.default
        let path = dataDirectory.path
        guard path.utf8.count + 20 < 108 else {
            throw Failure.dataDirectoryUnusable(path: path, reason: "the path is too long for a Unix socket (at most 87 bytes)")
        }
        do {
            try fileManager.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw Failure.dataDirectoryUnusable(path: path, reason: "\(error.localizedDescription)")
        }
        if isRoot {
            guard let user = getpwnam("postgres") else { throw Failure.noUnprivilegedUser }
            let uid = user.pointee.pw_uid
            let gid = user.pointee.pw_gid
            // The cluster's own directory belongs to postgres; its parents must at least be passable.
            if chown(path, uid, gid) != 0 {
                throw Failure.dataDirectoryUnusable(path: path, reason: "cannot hand it to the postgres user: \(String(cString: strerror(errno)))")
            }
            var parent = dataDirectory.deletingLastPathComponent()
            while parent.path != "/" {
                var info = stat()
                if stat(parent.path, &info) == 0, info.st_mode & 0o001 == 0 {
                    throw Failure.dataDirectoryUnusable(
                        path: path,
                        reason: "the postgres user cannot pass through \(parent.path); choose a data directory outside it (TOLLGATE_DATA_DIR)")
                }
                parent = parent.deletingLastPathComponent()
            }
        }
        chmod(path, 0o700)
    }

    static func findBinaries(
        environment: [String: String] = ProcessInfo.processInfo.environment, debianRoot debian: String = "/usr/lib/postgresql"
    ) throws -> URL {
        var candidates: [String] = []
        if let explicit = environment["TOLLGATE_PG_BINDIR"], !explicit.isEmpty { candidates.append(explicit) }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: debian)) ?? [])
            .compactMap { Int($0) }.sorted(by: >)
        candidates += versions.map { "\(debian)/\($0)/bin" }
        candidates += (environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
        for candidate in candidates {
            let folder = URL(fileURLWithPath: candidate)
            if FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("initdb").path),
                FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("pg_ctl").path)
            {
                return folder
            }
        }
        throw Failure.binariesNotFound(searched: candidates.isEmpty ? [debian] : Array(candidates.prefix(6)))
    }

    private func run(_ program: String, _ arguments: [String]) throws {
        let (status, output) = try execute(program, arguments)
        guard status == 0 else {
            throw Failure.commandFailed(command: ([program] + arguments).joined(separator: " "), status: status, output: output)
        }
    }

    /// Runs a PostgreSQL program, as `postgres` through `runuser` when we are root, with only the environment it needs
    /// (`ChildEnvironment.postgres`): the server it starts never holds the gateway's secrets.
    private func execute(_ program: String, _ arguments: [String]) throws -> (Int32, String) {
        let environment = ChildEnvironment.postgres()
        do {
            if isRoot { return try Spawn.run("/usr/sbin/runuser", ["-u", "postgres", "--", program] + arguments, environment: environment) }
            return try Spawn.run(program, arguments, environment: environment)
        } catch let failure as Spawn.Failure {
            throw Failure.commandFailed(command: ([program] + arguments).joined(separator: " "), status: -1, output: failure.description)
        }
    }
}
