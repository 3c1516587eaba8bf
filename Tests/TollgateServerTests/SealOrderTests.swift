import Foundation
import TollgatePostgres
import TollgateTestSupport
import XCTest

@testable import TollgateServer

/// The seal chain in the log's global order when transaction ids gain a digit (999 → 1000): ordered as numbers,
/// never as their text.
final class SealOrderTests: XCTestCase {
    func testTheChainStaysWholeWhenTransactionIDsCrossAPowerOfTen() async throws {
        let client = PostgresClient(configuration: try await TestCluster.freshDatabase())
        let store = EventStore(client: client)
        defer { store.stop() }
        // Use up transaction ids until the next power of ten is three away.
        try await client.withConnection { connection in
            let current = try connection.query("SELECT pg_current_xact_id()::text")[0].decode(UInt64.self, 0)
            var power: UInt64 = 10
            while power <= current + 10 { power *= 10 }
            try connection.execute(
                """
                CREATE PROCEDURE pg_temp.use_transaction_ids(n bigint) LANGUAGE plpgsql AS $$
                BEGIN FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$
                """)
            try connection.query("CALL pg_temp.use_transaction_ids($1)", [Int64(power - current - 4)])
        }
        // Six events in six transactions, across the power of ten; sealed one batch at a time, so every batch starts
        // from the head the one before it left.
        let runner = ProjectionRunner(store: store, projections: [EventSealProjection()], batchSize: 1)
        var transactionIDs: [UInt64] = []
        for index in 0..<6 {
            try await store.append(
                stream: "s\(index)", expectedVersion: .noStream, events: [NewEvent(type: "T", data: Array(#"{"i":\#(index)}"#.utf8))])
            _ = try await runner.catchUp()
            transactionIDs = try await client.query("SELECT transaction_id::text FROM tollgate.events e ORDER BY e.transaction_id").rows.map {
                try $0.decode(UInt64.self, 0)
            }
        }
        XCTAssertEqual(transactionIDs.count, 6)
        XCTAssertLessThan(String(transactionIDs.first!).count, String(transactionIDs.last!).count, "the ids gained a digit: \(transactionIDs)")

        let report = try await AuditVerifier(client: client).verify()
        XCTAssertEqual(report.checked, 6)
        XCTAssertEqual(report.breaks.map(\.description), [])
        let last = try await client.query("SELECT max(position) FROM tollgate.events")[0].decode(Int64.self, 0)
        XCTAssertEqual(report.head?.hasPrefix("\(last):"), true, "the head is the last event's seal")
        await client.shutdown()
    }
}
