import Foundation
import TollgateCore
import TollgatePostgres

/// Projection `approvals`: one row per approval request in `tollgate.approvals`, holding the fold of its stream
/// (``Approval``) as JSON and copies of the fields that lists filter on.
///
/// The gateway and the decide API write it in the same transaction as each approval event (so a held call and a
/// reviewer always see the current state); the projector runs it too, and skips the events a row already holds, so
/// `rebuild` replays the log into the same rows.
struct ApprovalsProjection: Projection {
    let name = "approvals"
    var eventTypes: Set<String>? { ApprovalEvent.types }

    func reset(on connection: PostgresConnection) throws {
        try connection.query("DELETE FROM tollgate.approvals")
    }

    func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws {
        var items: [(version: Int64, event: ApprovalEvent)] = []
        for recorded in events where ApprovalEvent.types.contains(recorded.type) {
            guard let event = try ApprovalEvent.decode(type: recorded.type, data: recorded.data) else { continue }
            items.append((recorded.version, event))
        }
        // No row locks here: the live rows are written with their events and are always ahead of the projector (which
        // then writes nothing), and locking them would make every held call's release wait for the projector's commit.
        if !items.isEmpty { _ = try Self.fold(items, on: connection, lock: false) }
    }

    /// Folds approval events (each with its stream version, in stream order) into their rows; returns the new states.
    /// An event at or below a row's version is already in it and is skipped.
    static func fold(
        _ items: [(version: Int64, event: ApprovalEvent)], on connection: PostgresConnection, lock: Bool = true
    ) throws -> [UUID:
        Approval]
    {
        var order: [UUID] = []
        var byApproval: [UUID: [(version: Int64, event: ApprovalEvent)]] = [:]
        for item in items {
            let id = item.event.approvalID
            if byApproval[id] == nil { order.append(id) }
            byApproval[id, default: []].append(item)
        }
        let existing = try ApprovalBook.states(order, on: connection, forUpdate: lock)
        var folded: [UUID: Approval] = [:]
        for id in order {
            var state = existing[id]
            var changed = false
            for (version, event) in byApproval[id] ?? [] {
                if let current = state {
                    guard version > current.version else { continue }
                    state!.apply(event)
                    changed = true
                } else if case .requested(let requested) = event {
                    state = Approval(requested)
                    changed = true
                }
            }
            guard let state else { continue }
            folded[id] = state
            if changed { try write(state, on: connection) }
        }
        return folded
    }

    private static func write(_ approval: Approval, on connection: PostgresConnection) throws {
        let request = approval.request
        try connection.query(
            """
            INSERT INTO tollgate.approvals AS a
                (approval_id, version, status, consumed, agent, server, tool, arguments_hash, policy_hash, requested_at, expires_at, state)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)
            ON CONFLICT (approval_id) DO UPDATE SET
                version = EXCLUDED.version, status = EXCLUDED.status, consumed = EXCLUDED.consumed, state = EXCLUDED.state
            WHERE a.version < EXCLUDED.version
            """,
            [
                approval.id, approval.version, approval.status.rawValue, approval.consumption != nil, request.agent, request.server, request.tool,
                request.argumentsHash, request.policyHash, request.requestedAt, request.expiresAt, JSONText(try EventCoding.encode(approval)),
            ])
    }
}
