import Foundation
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// The `tollgate` binary as a person or a script runs it.
final class CommandLineTests: XCTestCase {
    let tollgate = RunningProgram.tollgateBinary

    override func setUp() async throws {
        guard FileManager.default.isExecutableFile(atPath: tollgate) else {
            XCTFail("\(tollgate) is missing: build it with `swift build` (ops/test does)")
            throw CancellationError()
        }
    }

    func testEveryCommandExplainsItselfWithHelp() throws {
        let commands: [[String]] = [
            [], ["serve"], ["migrate"], ["events"], ["events", "tail"], ["policy"], ["policy", "check"], ["policy", "explain"],
            ["policy", "fmt"], ["policy", "import"],
        ]
        for command in commands {
            let result = try RunningProgram.run(tollgate, command + ["--help"])
            XCTAssertEqual(result.status, 0, "\(command) --help")
            XCTAssertTrue(result.stdout.contains("USAGE: tollgate"), "\(command): \(result.stdout.prefix(300))")
        }
    }

    func testBadArgumentsExitWithAUsageErrorThatSaysWhatIsAllowed() throws {
        let cases: [([String], String)] = [
            (["serve", "--listen", "nonsense"], "host:port"),
            (["serve", "--listen", "127.0.0.1:99999"], "port from 1 to 65535"),
            (["serve", "--listen", String(repeating: "x", count: 100_000) + ":80"], "host:port"),
            (["events", "tail", "--lines", "-5"], "--lines"),
            (["events", "tail", "--lines", "99999999999999999999"], "lines"),
            (["events", "tail", "--format", "xml"], "table"),
            (["events", "tail", "--stream", String(repeating: "s", count: 201)], "1 to 200 characters"),
            (["migrate", "--database", "x", "--pg-environment"], "give one of them"),
            (["serve", "--log-level", "loud"], "log-level"),
            (["no-such-command"], "Unexpected argument"),
        ]
        for (arguments, expected) in cases {
            let result = try RunningProgram.run(tollgate, arguments)
            XCTAssertEqual(result.status, 64, "\(arguments.map { $0.prefix(40) }): \(result.stderr.prefix(500))")
            XCTAssertTrue(result.stderr.contains(expected), "\(arguments.map { $0.prefix(40) }) → \(result.stderr.prefix(500))")
            XCTAssertLessThan(result.stderr.count, 5000, "an error does not echo a huge argument back")
        }
    }

    func testAnUnreachableDatabaseIsAClearErrorNotAHang() throws {
        let result = try RunningProgram.run(
            tollgate, ["migrate", "--database", "host=/nonexistent-tollgate-dir dbname=x connect_timeout=3"], timeout: .seconds(30))
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("could not connect to PostgreSQL"), result.stderr)
        XCTAssertTrue(result.stderr.contains("Check the connection string"), "says what to do: \(result.stderr)")
    }

    func testMigrateTwiceThenTailPrintsTheLatestEventsAsJSON() async throws {
        let database = try await TestCluster.freshDatabase(migrated: false).connectionString
        let first = try RunningProgram.run(tollgate, ["migrate", "--database", database])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("Applied"), first.stdout)
        let second = try RunningProgram.run(tollgate, ["migrate", "--database", database])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("up to date"), second.stdout)

        let client = PostgresClient(configuration: PostgresConfiguration(database))
        let store = EventStore(client: client)
        for index in 1...3 {
            try await store.append(
                stream: "call-\(index)", expectedVersion: .noStream,
                events: [NewEvent(type: "ToolCallDecided", data: Array(#"{"tool":"t\#(index)","note":"\u001b[31m"}"#.utf8))])
        }
        store.stop()
        await client.shutdown()

        let tail = try RunningProgram.run(tollgate, ["events", "tail", "-n", "2", "--format", "json", "--database", database])
        XCTAssertEqual(tail.status, 0, tail.stderr)
        let lines = tail.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, tail.stdout)
        let objects = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        XCTAssertEqual(objects.map { $0["stream"] as? String }, ["call-2", "call-3"])
        XCTAssertEqual(objects.map { ($0["data"] as? [String: Any])?["tool"] as? String }, ["t2", "t3"])
        XCTAssertFalse(tail.stdout.contains("\u{1b}"), "control characters stay escaped, never reach the terminal raw")

        let stream = try RunningProgram.run(tollgate, ["events", "tail", "--stream", "call-1", "--database", database])
        XCTAssertEqual(stream.status, 0, stream.stderr)
        XCTAssertEqual(stream.stdout.split(separator: "\n").count, 1, stream.stdout)
        XCTAssertTrue(stream.stdout.contains("call-1 v1  ToolCallDecided"), stream.stdout)
    }

    func testFollowPrintsEventsAsTheyCommit() async throws {
        let database = try await TestCluster.freshDatabase().connectionString
        let follow = try RunningProgram(tollgate, ["events", "tail", "--follow", "--format", "json", "--database", database])
        defer { follow.kill() }
        try await Task.sleep(for: .milliseconds(500))
        let client = PostgresClient(configuration: PostgresConfiguration(database))
        let store = EventStore(client: client)
        try await store.append(stream: "late", expectedVersion: .noStream, events: [NewEvent(type: "Late", data: Array("{}".utf8))])
        store.stop()
        await client.shutdown()
        let deadline = ContinuousClock.now + .seconds(10)
        while !follow.standardOutput.contains(#""stream":"late""#) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertTrue(follow.standardOutput.contains(#""type":"Late""#), follow.standardOutput + follow.standardError)
        follow.signal(SIGINT)
        XCTAssertNotNil(try? follow.wait(timeout: .seconds(10)), "stops on SIGINT")
    }

    func testServeAnswersReadyzAndStopsCleanlyOnSIGTERM() async throws {
        let owner = try await TestCluster.freshDatabase(migrated: false)
        let database = try TestCluster.runtime(of: owner).connectionString
        let port = HTTPProbe.freePort()
        let serve = try RunningProgram(
            tollgate, ["serve", "--listen", "127.0.0.1:\(port)", "--database", database, "--migration-database", owner.connectionString])
        defer { serve.kill() }
        let ready = await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(30))
        XCTAssertEqual(ready?.status, 200, serve.standardError)
        XCTAssertEqual(ready?.body, #"{"status":"ready"}"#)
        XCTAssertEqual(HTTPProbe.get(port: port, path: "/healthz")?.status, 200)
        XCTAssertEqual(HTTPProbe.get(port: port, path: "/no-such-thing")?.status, 404)
        // serve applied the migrations itself, as the owner, and runs as the runtime role.
        let client = PostgresClient(configuration: PostgresConfiguration(database))
        let applied = try await client.query("SELECT count(*) FROM tollgate.schema_migrations")[0].decode(Int.self, 0)
        await client.shutdown()
        XCTAssertEqual(applied, Migration.all.count)

        serve.signal(SIGTERM)
        XCTAssertEqual(try serve.wait(timeout: .seconds(15)), 0, serve.standardError)
        XCTAssertNil(HTTPProbe.get(port: port, path: "/healthz"), "nothing listens after the stop")
    }

    func testServeWithoutADatabaseStartsItsOwnClusterAndStopsIt() async throws {
        let dataDirectory = "/tmp/tg-serve-\(getpid())"
        try? FileManager.default.removeItem(atPath: dataDirectory)
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let port = HTTPProbe.freePort()
        var environment = ["TOLLGATE_DATABASE_URL": ""]
        environment["TOLLGATE_LOG_LEVEL"] = "info"
        let serve = try RunningProgram(
            tollgate, ["serve", "--listen", "127.0.0.1:\(port)", "--data-dir", dataDirectory], environment: environment)
        defer { serve.kill() }
        let ready = await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(60))
        XCTAssertEqual(ready?.status, 200, serve.standardError)
        let cluster = dataDirectory + "/postgres"
        XCTAssertTrue(FileManager.default.fileExists(atPath: cluster + "/.s.PGSQL.5432"), "listens on a Unix socket in the data directory")
        let settings = try String(contentsOfFile: cluster + "/postmaster.opts", encoding: .utf8)
        XCTAssertTrue(settings.contains("listen_addresses="), "no TCP port: \(settings)")

        serve.signal(SIGTERM)
        XCTAssertEqual(try serve.wait(timeout: .seconds(30)), 0, serve.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster + "/postmaster.pid"), "the cluster it started is stopped")

        // The next run reuses the same cluster (no second initdb) and finds its data.
        let again = try RunningProgram(
            tollgate, ["serve", "--listen", "127.0.0.1:\(port)", "--data-dir", dataDirectory], environment: environment)
        defer { again.kill() }
        let readyAgain = await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(60))
        XCTAssertEqual(readyAgain?.status, 200, again.standardError)
        XCTAssertFalse(again.standardError.contains("creating the embedded PostgreSQL cluster"), again.standardError)
        again.signal(SIGTERM)
        XCTAssertEqual(try again.wait(timeout: .seconds(30)), 0, again.standardError)
    }
}
