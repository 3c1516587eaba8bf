import Foundation
import Logging
import TollgateTestSupport
import XCTest

@testable import TollgatePostgres

final class PostgresClientTests: XCTestCase {
    func testTypedValuesRoundTripThroughParameters() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase(migrated: false))
        defer { Task { await client.shutdown() } }
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let bytes = Data([0, 1, 2, 0xfe, 0xff])
        let row = try await client.query(
            """
            SELECT $1::text, $2::bigint, $3::int, $4::bool, $5::timestamptz, $6::jsonb, $7::bytea, $8::uuid,
                   $9::text, $10::float8
            """,
            [
                "héllo \"quoted\" 'single'", Int64.max, Int32.min, true, when, JSONText(#"{"b": [1, 2], "a": null}"#), bytes, id,
                String?.none, 2.5,
            ])[0]
        XCTAssertEqual(try row.decode(String.self, 0), "héllo \"quoted\" 'single'")
        XCTAssertEqual(try row.decode(Int64.self, 1), Int64.max)
        XCTAssertEqual(try row.decode(Int32.self, 2), Int32.min)
        XCTAssertEqual(try row.decode(Bool.self, 3), true)
        XCTAssertEqual(try row.decode(Date.self, 4).timeIntervalSince1970, when.timeIntervalSince1970, accuracy: 0.000001)
        XCTAssertEqual(try row.decode(JSONText.self, 5).text, #"{"a": null, "b": [1, 2]}"#)
        XCTAssertEqual(try row.decode(Data.self, 6), bytes)
        XCTAssertEqual(try row.decode(UUID.self, 7), id)
        XCTAssertNil(try row.decode(String?.self, 8))
        XCTAssertTrue(row.isNull(8))
        XCTAssertEqual(try row.decode(Double.self, 9), 2.5)
        XCTAssertThrowsError(try row.decode(String.self, 8)) { error in
            guard case PostgresError.decoding = error else { return XCTFail("expected a decoding error, got \(error)") }
        }
        XCTAssertThrowsError(try row.decode(Int64.self, 0))
        XCTAssertThrowsError(try row.decode(Int.self, "no_such_column"))
    }

    func testTimestampsInOtherZonesAndPrecisionsDecode() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase(migrated: false))
        defer { Task { await client.shutdown() } }
        let result = try await client.withConnection { connection in
            try connection.execute("SET TimeZone TO 'Asia/Kolkata'")
            return try connection.query("SELECT '2026-11-25 10:00:00.5+00'::timestamptz, '1969-12-31 23:59:59+00'::timestamptz")
        }
        XCTAssertEqual(try result[0].decode(Date.self, 0).timeIntervalSince1970, 1_795_600_800.5, accuracy: 0.000001)
        XCTAssertEqual(try result[0].decode(Date.self, 1).timeIntervalSince1970, -1, accuracy: 0.000001)
    }

    func testBinaryResultsGiveEightByteIntegersTimesAndRawText() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase(migrated: false))
        defer { Task { await client.shutdown() } }
        let result = try await client.withConnection { connection in
            try connection.query(
                "SELECT $1::bigint, '18446744073709551615'::xid8, '2000-01-01 00:00:01.000002+00'::timestamptz, 'päß'::text, '{\"b\": 1}'::jsonb, 1::int4",
                [Int64(-5_000_000_000)], binaryResults: true)
        }
        let row = result[0]
        XCTAssertEqual(try row.binaryInt64(0), -5_000_000_000)
        XCTAssertEqual(UInt64(bitPattern: try row.binaryInt64(1)), UInt64.max)
        XCTAssertEqual(try row.binaryInt64(2), 1_000_002, "microseconds since 2000-01-01 UTC")
        XCTAssertEqual(try row.withBytes(3) { Array($0) }, Array("päß".utf8))
        XCTAssertEqual(try row.withBytes(4) { Array($0) }, [1] + Array(#"{"b": 1}"#.utf8), "jsonb: its version, then its text")
        XCTAssertThrowsError(try row.binaryInt64(5), "a four-byte integer is not read as eight")
        XCTAssertThrowsError(try row.withBytes(6) { _ in () }, "no such column")
    }

    func testHostileTextIsStoredVerbatimNeverExecuted() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase(migrated: false))
        defer { Task { await client.shutdown() } }
        try await client.query("CREATE TABLE notes (body text)")
        let hostile = "x'); DROP TABLE notes; -- \\ $1 \u{1F600}"
        try await client.query("INSERT INTO notes VALUES ($1)", [hostile])
        let stored = try await client.query("SELECT body FROM notes")
        XCTAssertEqual(stored.rowCount, 1)
        XCTAssertEqual(try stored[0].decode(String.self, 0), hostile)
        do {
            try await client.query("INSERT INTO notes VALUES ($1)", ["nul\u{0}byte"])
            XCTFail("a NUL byte must be refused")
        } catch let error as PostgresError {
            XCTAssertTrue("\(error)".contains("NUL"), "\(error)")
        }
        let arrays = try await client.query("SELECT $1::text[]", [PostgresArray(["a\"b", "c\\d", nil, "{e,f}", "ü\"€"])])
        XCTAssertEqual(try arrays[0].decode(String.self, 0), #"{"a\"b","c\\d",NULL,"{e,f}","ü\"€"}"#)
        let elements = try await client.query("SELECT unnest($1::text[])", [PostgresArray(["a\"b", "c\\d", "ü\"€", ""])])
        XCTAssertEqual(try elements.rows.map { try $0.decode(String.self, 0) }, ["a\"b", "c\\d", "ü\"€", ""])
    }

    func testServerErrorsCarrySQLStateAndMessage() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase(migrated: false))
        defer { Task { await client.shutdown() } }
        do {
            try await client.query("SELECT * FROM no_such_table")
            XCTFail("expected an error")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "42P01")
            XCTAssertTrue("\(error)".contains("no_such_table"), "\(error)")
        }
        // The connection that failed is still usable afterwards.
        let one = try await client.query("SELECT 1")
        XCTAssertEqual(try one[0].decode(Int.self, 0), 1)
    }

    func testUnreachableServerFailsFastWithAClearError() async throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-server-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let client = PostgresClient(configuration: PostgresConfiguration("host=\(empty.path) dbname=x user=x"))
        defer { Task { await client.shutdown() } }
        let started = ContinuousClock.now
        do {
            try await client.query("SELECT 1")
            XCTFail("expected a connection failure")
        } catch let error as PostgresError {
            guard case .connectionFailed = error else { return XCTFail("expected connectionFailed, got \(error)") }
            XCTAssertTrue("\(error)".contains("could not connect"), "\(error)")
            XCTAssertTrue(error.isConnectionProblem)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        // The failed attempt gave its slot back.
        XCTAssertEqual(client.connectionCounts.open, 0)
    }

    func testMalformedConnectionStringIsReported() async throws {
        let client = PostgresClient(configuration: PostgresConfiguration("host=/tmp nonsense_option=1"))
        defer { Task { await client.shutdown() } }
        do {
            try await client.query("SELECT 1")
            XCTFail("expected a connection failure")
        } catch let error as PostgresError {
            XCTAssertTrue("\(error)".contains("nonsense_option"), "\(error)")
        }
    }

    func testPasswordsAreRedactedFromConnectionStrings() {
        XCTAssertEqual(PostgresConfiguration("postgresql://alice:s3cret@db.example/tollgate").redacted, "postgresql://alice:***@db.example/tollgate")
        XCTAssertEqual(PostgresConfiguration("host=db password='a b' user=x").redacted, "host=db password=*** user=x")
        XCTAssertFalse(PostgresConfiguration("host=db password=s3cret").redacted.contains("s3cret"))
    }

    func testPoolNeverOpensMoreThanItsMaximumAndTimesOutWaiters() async throws {
        let configuration = try await TestCluster.freshDatabase(migrated: false)
        let client = PostgresClient(configuration: configuration, options: .init(maxConnections: 2, waitTimeout: .milliseconds(300)))
        defer { Task { await client.shutdown() } }
        try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    try await client.withConnection { connection in
                        _ = try connection.query("SELECT pg_sleep(0.02)")
                        return connection.backendPID
                    }
                }
            }
            var backends = Set<Int32>()
            for try await pid in group { backends.insert(pid) }
            XCTAssertLessThanOrEqual(backends.count, 2)
        }
        XCTAssertEqual(client.connectionCounts.open, 2)

        // Both connections busy for 1 s: a third caller gives up after the 300 ms wait timeout.
        async let first: Void = client.withConnection { _ = try $0.query("SELECT pg_sleep(1)") }
        async let second: Void = client.withConnection { _ = try $0.query("SELECT pg_sleep(1)") }
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        do {
            try await client.query("SELECT 1")
            XCTFail("expected a pool timeout")
        } catch let error as PostgresError {
            guard case .poolTimeout = error else { return XCTFail("expected poolTimeout, got \(error)") }
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(900))
        _ = try await (first, second)
    }

    func testBrokenConnectionsAreReplacedAutomatically() async throws {
        let configuration = try await TestCluster.freshDatabase(migrated: false)
        let client = PostgresClient(configuration: configuration, options: .init(maxConnections: 1))
        defer { Task { await client.shutdown() } }
        let firstPID = try await client.withConnection { $0.backendPID }
        // Terminate that backend from another connection, as a server restart or an admin would.
        let admin = try PostgresConnection.connect(configuration)
        _ = try admin.query("SELECT pg_terminate_backend($1)", [firstPID])
        admin.close()
        try await Task.sleep(for: .milliseconds(100))
        let result = try await client.query("SELECT pg_backend_pid()")
        let secondPID = try result[0].decode(Int32.self, 0)
        XCTAssertNotEqual(firstPID, secondPID)
    }

    /// A statement is prepared the second time it runs on a connection, and answers for its own parameters every time.
    func testRepeatedStatementsArePreparedOnceAndAnswerForTheirOwnParameters() async throws {
        let configuration = try await TestCluster.freshDatabase(migrated: false)
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        let sql = "SELECT $1::int * 2, $2::text"
        func preparedCopies() throws -> Int64 {
            try connection.query("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", [sql])[0].decode(Int64.self, 0)
        }
        XCTAssertEqual(try connection.query(sql, [Int32(1), "a"])[0].decode(Int32.self, 0), 2)
        XCTAssertEqual(try preparedCopies(), 0, "a statement that ran once is not prepared")
        for value in Int32(2)...Int32(5) {
            let row = try connection.query(sql, [value, "text \(value)"])[0]
            XCTAssertEqual(try row.decode(Int32.self, 0), value * 2)
            XCTAssertEqual(try row.decode(String.self, 1), "text \(value)")
        }
        XCTAssertEqual(try preparedCopies(), 1)
        // The same text with a binary parameter is another statement: its parameter types are fixed at preparation.
        let bytes = "SELECT length($1::bytea)"
        XCTAssertEqual(try connection.query(bytes, [Data([1, 2, 3])])[0].decode(Int32.self, 0), 3)
        XCTAssertEqual(try connection.query(bytes, [Data([1])])[0].decode(Int32.self, 0), 1)
        XCTAssertEqual(try connection.query(bytes, [String?.none])[0].isNull(0), true)
    }

    /// Statements made for one occasion never take a place, a connection prepares at most its limit, and statements
    /// past the limit still run.
    func testPreparedStatementsAreBoundedPerConnection() async throws {
        let configuration = try await TestCluster.freshDatabase(migrated: false)
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        for index in 0..<50 { _ = try connection.query("SELECT $1::int + \(index)", [Int32(1)]) }
        let count = "SELECT count(*) FROM pg_prepared_statements"
        XCTAssertEqual(try connection.query(count)[0].decode(Int64.self, 0), 0)
        let limit = PostgresConnection.maxPrepared
        for round in 0..<2 {
            for index in 0..<(limit + 10) {
                let row = try connection.query("SELECT $1::int + \(index + 1000)", [Int32(round)])[0]
                XCTAssertEqual(try row.decode(Int32.self, 0), Int32(round + index + 1000))
            }
        }
        XCTAssertEqual(try connection.query(count)[0].decode(Int64.self, 0), Int64(limit))
    }

    /// A statement the server refuses is refused the same way every time, prepared or not, and leaves the connection usable.
    func testARefusedStatementFailsAlikeEveryTime() async throws {
        let configuration = try await TestCluster.freshDatabase(migrated: false)
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        for _ in 0..<3 {
            XCTAssertThrowsError(try connection.query("SELEKT $1::int", [Int32(1)])) { error in
                XCTAssertEqual((error as? PostgresError)?.sqlState, "42601", "\(error)")
            }
            XCTAssertThrowsError(try connection.query("SELECT 1 / $1::int", [Int32(0)])) { error in
                XCTAssertEqual((error as? PostgresError)?.sqlState, "22012", "\(error)")
            }
        }
        XCTAssertEqual(try connection.query("SELECT 1 / $1::int", [Int32(1)])[0].decode(Int32.self, 0), 1)
    }

    func testListenReceivesNotifications() async throws {
        let configuration = try await TestCluster.freshDatabase(migrated: false)
        let listener = PostgresListener(configuration: configuration, channels: ["test_channel"], logger: Logger(label: "test"))
        listener.start()
        defer { listener.stop() }
        // Wait until the listener is connected (its first bump), then notify from another connection.
        let deadline = ContinuousClock.now + .seconds(5)
        while !listener.isConnected && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertTrue(listener.isConnected)
        let seen = listener.signal.generation
        let sender = try PostgresConnection.connect(configuration)
        _ = try sender.query("SELECT pg_notify('test_channel', 'hello')")
        sender.close()
        let started = ContinuousClock.now
        await listener.signal.wait(after: seen, timeout: .seconds(5))
        XCTAssertGreaterThan(listener.signal.generation, seen)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
    }
}
