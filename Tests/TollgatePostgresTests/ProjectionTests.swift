import Foundation
import Logging
import TollgateTestSupport
import XCTest

@testable import TollgatePostgres

final class ProjectionTests: XCTestCase {
    struct Row: Equatable {
        var stream: String
        var version: Int64
        var count: Int64
        var firstType: String
        var lastType: String
        var lastPosition: Int64
        var updatedAt: Date
    }

    func summaries(_ client: PostgresClient) async throws -> [Row] {
        try await client.query(
            "SELECT stream_id, version, event_count, first_type, last_type, last_position, updated_at FROM tollgate.stream_summaries ORDER BY stream_id"
        ).rows.map {
            Row(
                stream: try $0.decode(String.self, 0), version: try $0.decode(Int64.self, 1), count: try $0.decode(Int64.self, 2),
                firstType: try $0.decode(String.self, 3), lastType: try $0.decode(String.self, 4), lastPosition: try $0.decode(Int64.self, 5),
                updatedAt: try $0.decode(Date.self, 6))
        }
    }

    func testARebuiltProjectionEqualsTheLiveOne() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        defer { store.stop() }
        let runner = ProjectionRunner(store: store, projections: [StreamSummaryProjection()], batchSize: 7, pollInterval: .milliseconds(20))
        let live = Task { try await runner.run() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<6 {
                group.addTask {
                    for index in 0..<40 {
                        try await store.append(
                            stream: "s\(writer % 4)", expectedVersion: .any,
                            events: [NewEvent(type: "T\(index % 3)", data: Array("{}".utf8)), NewEvent(type: "U", data: Array("[1]".utf8))])
                    }
                }
            }
            try await group.waitForAll()
        }
        // Let the live runner finish, then compare with a rebuild.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, try await runner.status()[0].lag > 0 { try await Task.sleep(for: .milliseconds(20)) }
        live.cancel()
        _ = try? await live.value
        let liveRows = try await summaries(store.client)
        XCTAssertEqual(liveRows.map(\.count).reduce(0, +), 6 * 40 * 2)
        XCTAssertEqual(liveRows.count, 4)

        let replayed = try await runner.rebuild("streams")
        XCTAssertEqual(replayed, 6 * 40 * 2)
        let rebuiltRows = try await summaries(store.client)
        XCTAssertEqual(rebuiltRows, liveRows)
        let status = try await runner.status()
        XCTAssertEqual(status[0].lag, 0)
    }

    /// A projection whose apply fails part-way: neither its rows nor its checkpoint may move.
    struct FailingProjection: Projection {
        let name = "failing"
        func reset(on connection: PostgresConnection) throws {}
        func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws {
            try StreamSummaryProjection().apply(events, on: connection)
            throw PostgresError.client(message: "boom after writing")
        }
    }

    func testAFailedBatchAdvancesNeitherTheProjectionNorItsCheckpoint() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        try await store.append(stream: "a", expectedVersion: .noStream, events: [NewEvent(type: "A", data: Array("{}".utf8))])
        let runner = ProjectionRunner(store: store, projections: [FailingProjection()])
        do {
            try await runner.catchUp()
            XCTFail("expected the projection to fail")
        } catch {}
        let rows = try await summaries(store.client)
        XCTAssertEqual(rows, [])
        let status = try await runner.status()
        XCTAssertEqual(status[0].checkpoint, .start)
        XCTAssertEqual(status[0].lag, 1)
    }

    func testTwoRunnersSharingADatabaseApplyEachEventOnce() async throws {
        let configuration = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: configuration))
        for index in 0..<300 {
            try await store.append(stream: "s\(index % 10)", expectedVersion: .any, events: [NewEvent(type: "E", data: Array("{}".utf8))])
        }
        let other = EventStore(client: PostgresClient(configuration: configuration))
        let first = ProjectionRunner(store: store, projections: [StreamSummaryProjection()], batchSize: 5)
        let second = ProjectionRunner(store: other, projections: [StreamSummaryProjection()], batchSize: 5)
        async let a = first.catchUp()
        async let b = second.catchUp()
        let applied = try await a + b
        XCTAssertEqual(applied, 300)
        let rows = try await summaries(store.client)
        XCTAssertEqual(rows.map(\.count).reduce(0, +), 300)
        XCTAssertEqual(rows.map(\.version), Array(repeating: 30, count: 10))
    }

    /// Records in a table of its own (`seen`, made by the owner with `makeSeenTable`) each event it is given: which
    /// projection saw which position.
    struct RecordingProjection: Projection {
        let name: String
        var eventTypes: Set<String>?
        func reset(on connection: PostgresConnection) throws {}
        func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws {
            try connection.query(
                "INSERT INTO seen SELECT $1, unnest($2::bigint[]), unnest($3::text[])",
                [name, PostgresArray(events.map(\.position)), PostgresArray(events.map(\.type))])
        }
    }

    /// The recording projections' table, made by the owner for the runtime role the stores run as.
    func makeSeenTable(_ configuration: PostgresConfiguration) throws {
        let owner = try PostgresConnection.connect(try TestCluster.owner(of: configuration))
        defer { owner.close() }
        try owner.execute(
            "CREATE TABLE public.seen (projection text NOT NULL, position bigint NOT NULL, type text NOT NULL); "
                + "GRANT SELECT, INSERT ON public.seen TO \(TestCluster.runtimeRole)")
    }

    /// Several projections move together (one transaction per batch): each gets every event of its types exactly once,
    /// in order, across batches, and every checkpoint ends at the head.
    func testProjectionsMovingTogetherEachSeeTheirShareOnce() async throws {
        let configuration = try await TestCluster.freshDatabase()
        try makeSeenTable(configuration)
        let store = EventStore(client: PostgresClient(configuration: configuration))
        defer { store.stop() }
        for index in 0..<20 {
            try await store.append(
                stream: "s\(index % 4)", expectedVersion: .any,
                events: [NewEvent(type: index % 3 == 0 ? "B" : "A", data: Array("{}".utf8)), NewEvent(type: "C", data: Array("{}".utf8))])
        }
        let runner = ProjectionRunner(
            store: store,
            projections: [
                StreamSummaryProjection(), RecordingProjection(name: "all", eventTypes: nil), RecordingProjection(name: "only-b", eventTypes: ["B"]),
            ], batchSize: 3)
        let applied = try await runner.catchUp()
        XCTAssertEqual(applied, 40 + 40 + 7)
        let seen = try await store.client.query("SELECT projection, position, type FROM seen ORDER BY projection, position")
        let byProjection = Dictionary(grouping: seen.rows, by: { (try? $0.decode(String.self, 0)) ?? "" })
        let positions = try await store.client.query("SELECT position FROM tollgate.events ORDER BY position").rows.map {
            try $0.decode(Int64.self, 0)
        }
        XCTAssertEqual(try byProjection["all"]?.map { try $0.decode(Int64.self, 1) }, positions)
        XCTAssertEqual(try byProjection["only-b"]?.map { try $0.decode(String.self, 2) }, Array(repeating: "B", count: 7))
        let rows = try await summaries(store.client)
        XCTAssertEqual(rows.map(\.count).reduce(0, +), 40)
        for status in try await runner.status() {
            XCTAssertEqual(status.lag, 0, status.name)
        }
        let again = try await runner.catchUp()
        XCTAssertEqual(again, 0)
        try await store.append(stream: "s9", expectedVersion: .noStream, events: [NewEvent(type: "B", data: Array("{}".utf8))])
        let one = try await runner.catchUp()
        XCTAssertEqual(one, 3)
        let count = try await store.client.query("SELECT count(*) FROM seen").rows[0].decode(Int64.self, 0)
        XCTAssertEqual(count, 40 + 7 + 2)
    }

    /// When one projection fails, the others are updated alone: a failing projection holds back only itself.
    func testAFailingProjectionDoesNotHoldBackTheOthers() async throws {
        let configuration = try await TestCluster.freshDatabase()
        try makeSeenTable(configuration)
        let store = EventStore(client: PostgresClient(configuration: configuration))
        defer { store.stop() }
        try await store.append(stream: "a", expectedVersion: .noStream, events: [NewEvent(type: "A", data: Array("{}".utf8))])
        let runner = ProjectionRunner(store: store, projections: [RecordingProjection(name: "all", eventTypes: nil), FailingProjection()])
        do {
            try await runner.catchUp()
            XCTFail("expected the failing projection to fail")
        } catch {}
        let status = Dictionary(uniqueKeysWithValues: try await runner.status().map { ($0.name, $0) })
        XCTAssertEqual(status["all"]?.lag, 0)
        XCTAssertEqual(status["failing"]?.lag, 1)
        XCTAssertEqual(status["failing"]?.checkpoint, .start)
        let rows = try await summaries(store.client)
        XCTAssertEqual(rows, [])
        let count = try await store.client.query("SELECT count(*) FROM seen").rows[0].decode(Int64.self, 0)
        XCTAssertEqual(count, 1)
    }

    /// A projection that folds only some types moves its checkpoint past the others' events at most every few seconds
    /// when it applies nothing: the first time, then not again at the next wake-up.
    func testALazyProjectionDoesNotWriteItsCheckpointAtEveryWakeUp() async throws {
        let configuration = try await TestCluster.freshDatabase()
        try makeSeenTable(configuration)
        let store = EventStore(client: PostgresClient(configuration: configuration))
        defer { store.stop() }
        let runner = ProjectionRunner(store: store, projections: [RecordingProjection(name: "only-b", eventTypes: ["B"])])
        try await store.append(stream: "a1", expectedVersion: .noStream, events: [NewEvent(type: "A", data: Array("{}".utf8))])
        try await runner.catchUp()
        let first = try await runner.status()[0]
        XCTAssertEqual(first.lag, 0, "the first pass moves past events it does not fold")
        try await store.append(stream: "a2", expectedVersion: .noStream, events: [NewEvent(type: "A", data: Array("{}".utf8))])
        try await runner.catchUp()
        let second = try await runner.status()[0]
        XCTAssertEqual(second.checkpoint, first.checkpoint, "a checkpoint-only write again within seconds")
        XCTAssertEqual(second.lag, 1)
        try await store.append(stream: "b1", expectedVersion: .noStream, events: [NewEvent(type: "B", data: Array("{}".utf8))])
        try await runner.catchUp()
        let third = try await runner.status()[0]
        XCTAssertEqual(third.lag, 0, "applying an event moves the checkpoint at once")
    }

    func testRebuildingAnUnknownProjectionSaysWhichExist() async throws {
        let store = EventStore(client: PostgresClient(configuration: try await TestCluster.freshDatabase()))
        let runner = ProjectionRunner(store: store, projections: [StreamSummaryProjection()])
        do {
            try await runner.rebuild("aprovals")
            XCTFail("expected an error")
        } catch let error as ProjectionError {
            XCTAssertEqual("\(error)", "there is no projection named \"aprovals\"; known projections: streams")
        }
    }
}
