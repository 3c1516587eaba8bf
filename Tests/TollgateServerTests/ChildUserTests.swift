import Foundation
import TollgateCore
import TollgateSystem
import TollgateTestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// What a stdio MCP server can reach of the gateway's database through the file system, seen from inside the real
/// child (the fixture's `run` and `environment` tools): with `servers.<name>.user` it runs as that OS user and reads
/// neither the embedded cluster's password files nor its socket; without it, it holds no password, and a gateway
/// running as root warns about each such server at start.
final class ChildUserTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    static let allow = "version: \"1\"\ndefault: allow\n"

    /// `psql` from the PostgreSQL the tests' cluster runs on.
    static func psql() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap { Int($0) }.sorted(by: >)
        guard let path = versions.map({ "\(root)/\($0)/bin/psql" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("psql is not installed under \(root)/*/bin (apt-get install postgresql-client)")
        }
        return path
    }

    /// The embedded test cluster's data directory (its socket and password files), or a skip when tests use an external server.
    static func clusterDirectory() throws -> URL {
        _ = try TestCluster.configuration()
        guard let directory = TestCluster.dataDirectory else {
            throw XCTSkip("TOLLGATE_TEST_DATABASE_URL names an external server: there are no password files of an embedded cluster to protect")
        }
        return directory
    }

    /// Runs `argv` in the fixture server behind `wire` (its `run` tool): status, stdout and stderr.
    static func run(_ argv: [String], on wire: Wire, session: String, id: Int) -> (status: Int, stdout: String, stderr: String) {
        let arguments = JSONValue.object(["argv": .array(argv.map(JSONValue.string))]).canonicalJSON
        let reply = wire.call("run", arguments, id: id, session: session)
        guard let text = reply?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, let output = try? JSONValue(parsing: text) else {
            return (-100, "", "no result: \(String(describing: reply))")
        }
        return (Int(output["status"]?.doubleValue ?? -100), output["stdout"]?.stringValue ?? "", output["stderr"]?.stringValue ?? "")
    }

    /// The gateway's own connection string without its password file: what a child that holds no password can try.
    static func withoutPasswordFile(_ connection: String) -> String {
        connection.split(separator: " ").filter { !$0.hasPrefix("passfile=") }.joined(separator: " ")
    }

    static func warnings(in log: String, server: String) -> Int {
        log.components(separatedBy: "servers.\(server) runs as root, like the gateway").count - 1
    }

    // MARK: - As another user

    func testAServerWithAUserRunsAsThatUserAndReachesNeitherThePasswordFilesNorTheDatabase() async throws {
        guard geteuid() == 0 else {
            throw XCTSkip("runs only as root: starting a server as another user needs root (the suite runs as root in ops/test and CI)")
        }
        guard let nobody = getpwnam("nobody") else { throw XCTSkip("this machine has no `nobody` user") }
        let (nobodyUID, nobodyHome) = (nobody.pointee.pw_uid, String(cString: nobody.pointee.pw_dir))
        // The child must be able to run the fixture as nobody: the venv's interpreter, or (when that one lives under a
        // home nobody cannot enter, as pyenv's does) the system's, given the venv's packages.
        let venvPython = try Peers.python2()
        var python = venvPython
        var confinedEnv = ""
        var reachable = try Self.importsMCP(python, as: nobody, env: [:])
        if reachable.status != 0, let packages = Self.sitePackages(of: venvPython) {
            python = "/usr/bin/python3"
            reachable = try Self.importsMCP(python, as: nobody, env: ["PYTHONPATH": packages])
            confinedEnv = "    env: {PYTHONPATH: \(packages)}\n"
        }
        guard reachable.status == 0, FileManager.default.isReadableFile(atPath: Peers.fixtureServer) else {
            throw XCTSkip(
                "nobody cannot run \(python) with the mcp package (\(reachable.stderr.suffix(300))): put the checkout where other users can read it")
        }
        let psql = try Self.psql()
        let directory = try Self.clusterDirectory()
        let passwordFiles = ["runtime.pgpass", "owner.pgpass"].map { directory.appendingPathComponent($0).path }

        let gateway = try await GatewayUnderTest.start(servers: [
            "confined": .stdio(
                command: python, arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.allow,
                extra: "    user: nobody\n" + confinedEnv),
            "unconfined": .stdio(command: venvPython, arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.allow),
            "remote": .http(url: "http://127.0.0.1:\(HTTPProbe.freePort())/mcp", policy: Self.allow),
        ])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "confined", key: gateway.key)
        let session = try wire.initialize()

        // (a) It runs as nobody, with nobody's HOME, USER and LOGNAME.
        let id = Self.run(["id", "-u"], on: wire, session: session, id: 2)
        XCTAssertEqual(id.status, 0, id.stderr)
        XCTAssertEqual(id.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(nobodyUID)", "the child runs as nobody")
        let reply = wire.call("environment", "{}", id: 3, session: session)
        let environment = ChildEnvironmentTests.decodedEnvironment(reply?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue)
        XCTAssertEqual(environment["USER"], "nobody", "\(environment)")
        XCTAssertEqual(environment["LOGNAME"], "nobody")
        XCTAssertEqual(environment["HOME"], nobodyHome)

        // (b) It cannot read the cluster's password files: they hold passwords, and it gets none of them.
        for (index, file) in passwordFiles.enumerated() {
            let password = try XCTUnwrap(String(contentsOfFile: file, encoding: .utf8).split(separator: ":").last).trimmingCharacters(in: .newlines)
            let read = Self.run(["cat", file], on: wire, session: session, id: 10 + index)
            XCTAssertNotEqual(read.status, 0, "nobody read \(file)")
            XCTAssertFalse(read.stdout.contains(password), "the password in \(file) reached the child")
            XCTAssertTrue(read.stderr.contains("Permission denied"), read.stderr)
        }

        // (c) Connecting as the gateway's runtime role fails, with the gateway's own connection string (password file
        // included) and without one: the socket is in the cluster's directory, which nobody cannot enter.
        for (index, connection) in [gateway.database.connectionString, Self.withoutPasswordFile(gateway.database.connectionString)].enumerated() {
            let attempt = Self.run(
                [psql, "-X", "-w", "-At", "-d", connection, "-c", "SELECT 'connected'"], on: wire, session: session, id: 20 + index)
            XCTAssertNotEqual(attempt.status, 0, "nobody connected with \(connection): \(attempt.stdout)")
            XCTAssertFalse(attempt.stdout.contains("connected"))
        }

        // At start the gateway warned once about the server that runs as root, and only about it.
        XCTAssertEqual(Self.warnings(in: gateway.log, server: "unconfined"), 1, gateway.log)
        XCTAssertEqual(Self.warnings(in: gateway.log, server: "confined"), 0)
        XCTAssertEqual(Self.warnings(in: gateway.log, server: "remote"), 0)
        XCTAssertTrue(gateway.log.contains("including the database passwords"), gateway.log)
    }

    // MARK: - As the gateway's own user

    /// Runs as any user: a child of the gateway's own user has no password in its environment, so connecting as the
    /// runtime role fails. The same command with the password file succeeds, which shows the command is right, and
    /// shows the risk that `user` removes: whoever runs as the gateway's user can read that file.
    func testAServerWithoutAUserHoldsNoPasswordForTheDatabase() async throws {
        let psql = try Self.psql()
        let directory = try Self.clusterDirectory()
        // The gateway finds its password through PGPASSFILE, as an operator's deployment may; the child must not.
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.allow)],
            environment: ["PGPASSFILE": directory.appendingPathComponent("runtime.pgpass").path])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        let query = [psql, "-X", "-w", "-At", "-c", "SELECT 'connected as ' || current_user", "-d"]

        let without = Self.run(query + [Self.withoutPasswordFile(gateway.database.connectionString)], on: wire, session: session, id: 2)
        XCTAssertNotEqual(without.status, 0, "the child connected without a password: \(without.stdout)")
        XCTAssertTrue(without.stderr.contains("password"), "refused for want of a password: \(without.stderr)")
        XCTAssertFalse(without.stdout.contains("connected"))

        let with = Self.run(query + [gateway.database.connectionString], on: wire, session: session, id: 3)
        XCTAssertEqual(with.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "connected as \(TestCluster.runtimeRole)", with.stderr)

        XCTAssertEqual(Self.warnings(in: gateway.log, server: "fixture"), geteuid() == 0 ? 1 : 0, gateway.log)
    }

    func testTheStdioFrontWarnsAboutAServerThatRunsAsRoot() async throws {
        guard geteuid() == 0 else { throw XCTSkip("the warning is for a gateway that runs as root") }
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": .stdio(command: "/bin/cat", policy: Self.allow)])
        gateway.stop()
        let front = try RunningProgram.run(
            RunningProgram.tollgateBinary, ["stdio", "fixture", "--config", gateway.configPath, "--database", gateway.database.connectionString],
            environment: ["TOLLGATE_AGENT_KEY": gateway.key], timeout: .seconds(60))
        XCTAssertEqual(Self.warnings(in: front.stderr, server: "fixture"), 1, front.stderr)
    }

    /// Whether `python` imports the `mcp` package when run as `user`.
    static func importsMCP(
        _ python: String, as user: UnsafeMutablePointer<passwd>, env: [String: String]
    ) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let assignments = env.map { "\($0.key)=\($0.value)" }
        return try RunningProgram.run(
            "/usr/bin/setpriv",
            ["--reuid=\(user.pointee.pw_uid)", "--regid=\(user.pointee.pw_gid)", "--init-groups", "--", "/usr/bin/env"] + assignments + [
                python, "-c", "import mcp",
            ],
            timeout: .seconds(30))
    }

    /// The `site-packages` folder of the virtual environment whose interpreter is `python` (`VENV/bin/python`).
    static func sitePackages(of python: String) -> String? {
        let lib = URL(fileURLWithPath: python).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("lib")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        return versions.filter { $0.hasPrefix("python3") }.sorted().last.map {
            lib.appendingPathComponent($0).appendingPathComponent("site-packages").path
        }
    }

    // MARK: - Refused at start

    /// A gateway that is not root cannot start a server as another user: `serve` stops at start and says why.
    func testAGatewayThatIsNotRootRefusesAnotherUserAtStart() throws {
        guard geteuid() == 0 else { throw XCTSkip("runs only as root (it starts the gateway as nobody)") }
        guard let nobody = getpwnam("nobody") else { throw XCTSkip("this machine has no `nobody` user") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-user-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        chmod(directory.path, 0o755)
        let config = directory.appendingPathComponent("tollgate.yaml")
        try "servers:\n  s:\n    command: /bin/cat\n    policy: p.yaml\n    user: root\n".write(to: config, atomically: true, encoding: .utf8)
        try Self.allow.write(to: directory.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        chmod(config.path, 0o644)
        let serve = try RunningProgram.run(
            "/usr/bin/setpriv",
            [
                "--reuid=nobody", "--regid=\(nobody.pointee.pw_gid)", "--init-groups", "--", RunningProgram.tollgateBinary, "serve", "--config",
                config.path, "--listen", "127.0.0.1:\(HTTPProbe.freePort())", "--database", "host=/nonexistent dbname=x",
            ],
            timeout: .seconds(30))
        XCTAssertNotEqual(serve.status, 0, serve.stderr)
        XCTAssertTrue(serve.stderr.contains("servers.s.user: cannot start the server as `root`"), serve.stderr)
        XCTAssertTrue(serve.stderr.contains("only root can start a process as another user"), serve.stderr)
    }

    func testOnlyRootStartsAProgramAsAnotherUserAndThroughSetpriv() throws {
        let user = ChildUser(name: "svc", uid: 1234, gid: 2345, home: "/srv/svc", shell: "/bin/sh")
        let asRoot = try user.command("python3", ["server.py"], runningAs: 0, gid: 0, setpriv: "/usr/bin/setpriv")
        XCTAssertEqual(asRoot.program, "/usr/bin/setpriv")
        XCTAssertEqual(asRoot.arguments, ["--reuid=1234", "--regid=2345", "--init-groups", "--", "python3", "server.py"])
        let asItself = try user.command("python3", ["server.py"], runningAs: 1234, gid: 2345, setpriv: nil)
        XCTAssertEqual(asItself.program, "python3", "a gateway that already is the user starts the program itself")
        XCTAssertEqual(asItself.arguments, ["server.py"])
        XCTAssertThrowsError(try user.command("python3", [], runningAs: 1000, gid: 1000, setpriv: "/usr/bin/setpriv")) { error in
            guard case ChildUser.Failure.notPermitted = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("only root can start a process as another user"), "\(error)")
        }
        XCTAssertThrowsError(try user.command("python3", [], runningAs: 1234, gid: 1000, setpriv: "/usr/bin/setpriv"), "another group, too")
        XCTAssertEqual(
            try? user.command("python3", [], runningAs: 0, gid: 0, setpriv: nil).program, nil, "without setpriv as root: an error")
        XCTAssertEqual(
            user.environment(over: ["HOME": "/root", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash", "PATH": "/bin"]),
            ["HOME": "/srv/svc", "USER": "svc", "LOGNAME": "svc", "SHELL": "/bin/sh", "PATH": "/bin"])
        XCTAssertThrowsError(try ChildUser.resolve(user: "no-such-user-4a7f"))
    }
}
