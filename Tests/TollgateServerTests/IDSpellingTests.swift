import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// Every id the gateway writes is lowercase, and a log written before (with Swift's uppercase `uuidString` in its
/// events) still reads, folds and audits: the log is never rewritten.
final class IDSpellingTests: XCTestCase {
    let callID = UUID(uuidString: "9AFEB4D5-0C2E-4F7A-8D3B-5E6F7A8B9C0D")!
    let approvalID = UUID(uuidString: "5B0C7C1E-1111-4000-8000-00000000ABCD")!
    let at = Date(timeIntervalSince1970: 1_764_655_561)

    /// An event's bytes as the gateway wrote them before ids were lowercase: every id in uppercase.
    func old(_ type: String, _ bytes: [UInt8]) -> NewEvent {
        var text = String(decoding: bytes, as: UTF8.self)
        for id in [callID, approvalID] { text = text.replacingOccurrences(of: id.lowercasedString, with: id.uuidString) }
        return NewEvent(type: type, data: Array(text.utf8))
    }

    /// A held call from an old log, approved by alice and run: its decision, the approval's three events and the outcome,
    /// all with uppercase ids.
    func appendOldApprovedCall(to store: EventStore) async throws {
        let decided = ToolCallDecided(
            callID: callID, agent: "agent-a", grant: "g", session: "s", server: "pay", tool: "transfer", requestID: "7", arguments: ["amount": 51],
            argumentsHash: ToolCallDecided.hash(arguments: ["amount": 51]), argumentsStorage: "full", decision: "require_approval", reason: nil,
            retryAfter: nil, rule: "tools.transfer", policyHash: "sha256:00", category: nil, reservations: [], decisionMicros: 40, decidedAt: at,
            approvalID: approvalID)
        let requested = ApprovalRequested(
            approvalID: approvalID, callID: callID, agent: "agent-a", grant: "g", session: "s", server: "pay", tool: "transfer",
            arguments: ["amount": 51], argumentsHash: decided.argumentsHash, argumentsStorage: "full", policyHash: "sha256:00",
            rule: "tools.transfer", reason: nil, quorum: 1, reviewers: [], category: nil, requestedAt: at, expiresAt: at.addingTimeInterval(3600))
        let granted = ApprovalGranted(approvalID: approvalID, reviewer: "alice", comment: nil, grantedAt: at.addingTimeInterval(5))
        let consumed = ApprovalConsumed(approvalID: approvalID, callID: callID, reservations: [], consumedAt: at.addingTimeInterval(6))
        let completed = ToolCallCompleted(
            callID: callID, server: "pay", tool: "transfer", outcome: "success", errorCode: nil, error: nil, durationMillis: 3, released: [],
            completedAt: at.addingTimeInterval(7))

        let oldDecided = old(ToolCallDecided.type, EventCoding.encode(decided))
        XCTAssertTrue(String(decoding: oldDecided.data, as: UTF8.self).contains(#""callID":"9AFEB4D5-0C2E-4F7A-8D3B-5E6F7A8B9C0D""#))
        try await store.append(stream: "call-\(callID.lowercasedString)", expectedVersion: .noStream, events: [oldDecided])
        try await store.append(
            stream: ApprovalEvent.stream(approvalID), expectedVersion: .noStream,
            events: [
                old(ApprovalRequested.type, try ApprovalEvent.requested(requested).encoded()),
                old(ApprovalGranted.type, try ApprovalEvent.granted(granted).encoded()),
                old(ApprovalConsumed.type, try ApprovalEvent.consumed(consumed).encoded()),
            ])
        try await store.append(
            stream: "call-\(callID.lowercasedString)", expectedVersion: .exactly(1),
            events: [old(ToolCallCompleted.type, EventCoding.encode(completed))])
    }

    func tollgate(_ arguments: [String], database: PostgresConfiguration) throws -> (status: Int32, stdout: String, stderr: String) {
        try RunningProgram.run(
            RunningProgram.tollgateBinary, arguments + ["--database", database.connectionString, "--log-level", "warning"], timeout: .seconds(60))
    }

    func testAnOldLogWithUppercaseIDsStillFoldsAndAudits() async throws {
        let database = try await TestCluster.freshDatabase()
        let store = EventStore(client: PostgresClient(configuration: database))
        defer { store.stop() }
        try await appendOldApprovedCall(to: store)

        // The approvals projection folds the old request and writes its state again; the database checks that state's
        // request against the event's bytes, so the old spelling must survive the fold.
        let rebuild = try tollgate(["projections", "rebuild", "approvals"], database: database)
        XCTAssertEqual(rebuild.status, 0, rebuild.stderr)
        let row = try await store.client.query(
            "SELECT approval_id::text, status, consumed, state->'request'->>'approvalID' FROM tollgate.approvals")
        XCTAssertEqual(row.rowCount, 1)
        XCTAssertEqual(try row[0].decode(String.self, 0), approvalID.lowercasedString)
        XCTAssertEqual(try row[0].decode(String.self, 1), "approved")
        XCTAssertEqual(try row[0].decode(Bool.self, 2), true)
        XCTAssertEqual(try row[0].decode(String.self, 3), approvalID.uuidString, "the old request keeps its bytes")

        // The audit reads the old events and names the call and its approval in lowercase, as everything else does.
        let replay = try tollgate(["audit", "replay", "--format", "jsonl"], database: database)
        XCTAssertEqual(replay.status, 0, replay.stderr)
        let calls = replay.stdout.split(separator: "\n").map { try? JSONValue(parsing: String($0)) }
        XCTAssertEqual(calls.count, 1, replay.stdout)
        let call = try XCTUnwrap(calls.first ?? nil, replay.stdout)
        XCTAssertEqual(call["call_id"]?.stringValue, callID.lowercasedString)
        XCTAssertEqual(call["outcome"]?.stringValue, "success")
        XCTAssertEqual(call["approval"]?["id"]?.stringValue, approvalID.lowercasedString)
        XCTAssertEqual(call["approval"]?["approved_by"], ["alice"])
    }

    /// What the gateway writes now: the same ids in lowercase, in every event, beside the streams that name them.
    func testNewEventsWriteLowercaseIDs() throws {
        let id = UUID()
        let decided = ToolCallDecided(
            callID: id, agent: "a", grant: "g", session: "s", server: "pay", tool: "t", requestID: "1", arguments: nil, argumentsHash: "h",
            argumentsStorage: "hash", decision: "allow", reason: nil, retryAfter: nil, rule: "default", policyHash: "p", category: nil,
            reservations: [], decisionMicros: 1, decidedAt: at, approvalID: id)
        let text = String(decoding: EventCoding.encode(decided), as: UTF8.self)
        XCTAssertTrue(text.contains(#""callID":"\#(id.lowercasedString)""#) && text.contains(#""approvalID":"\#(id.lowercasedString)""#), text)
        XCTAssertFalse(text.contains(id.uuidString), text)
        let granted = String(
            decoding: try ApprovalEvent.granted(ApprovalGranted(approvalID: id, reviewer: "r", comment: nil, grantedAt: at)).encoded(), as: UTF8.self)
        XCTAssertTrue(granted.contains(#""approvalID":"\#(id.lowercasedString)""#), granted)
        XCTAssertEqual(ApprovalEvent.stream(id), "approval-\(id.lowercasedString)")
    }
}
