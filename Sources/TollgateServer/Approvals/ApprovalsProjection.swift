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

    /// Empties the table for a rebuild (`TRUNCATE`, through `tollgate.reset_projection`, which the runtime role may run
    /// though it holds no TRUNCATE privilege: the rows inserted next go into fresh indexes). Readers wait until the
    /// rebuild commits.
    func reset(on connection: PostgresConnection) throws {
        try connection.query("SELECT tollgate.reset_projection('approvals')")
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
        var written: [Approval] = []
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
            if changed { written.append(state) }
        }
        try write(written, on: connection)
        return folded
    }

    /// Writes the approvals' rows in one statement.
    private static func write(_ approvals: [Approval], on connection: PostgresConnection) throws {
        guard !approvals.isEmpty else { return }
        func column(_ value: (Approval) throws -> any PostgresEncodable) rethrows -> PostgresArray {
            PostgresArray(encoding: try approvals.map(value))
        }
        try connection.query(
            """
            INSERT INTO tollgate.approvals AS a
                (approval_id, version, status, consumed, agent, server, tool, arguments_hash, policy_hash, requested_at, expires_at, state)
            SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::text[], $8::text[],
                                 $9::text[], $10::timestamptz[], $11::timestamptz[], $12::jsonb[])
            ON CONFLICT (approval_id) DO UPDATE SET
                version = EXCLUDED.version, status = EXCLUDED.status, consumed = EXCLUDED.consumed, state = EXCLUDED.state
            WHERE a.version < EXCLUDED.version
            """,
            [
                column(\.id), column(\.version), column(\.status.rawValue), column { $0.consumption != nil }, column(\.request.agent),
                column(\.request.server), column(\.request.tool), column(\.request.argumentsHash), column(\.request.policyHash),
                column(\.request.requestedAt), column(\.request.expiresAt),
                try column { String(decoding: try EventCoding.encode($0), as: UTF8.self) },
            ])
    }
}
