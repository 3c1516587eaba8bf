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
        try ApprovalStore.reset(on: connection)
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
        let rows = try approvals.map { approval in
            ApprovalStore.Row(
                approvalID: approval.id, version: approval.version, status: approval.status.rawValue, consumed: approval.consumption != nil,
                agent: approval.request.agent, server: approval.request.server, tool: approval.request.tool,
                argumentsHash: approval.request.argumentsHash, policyHash: approval.request.policyHash, requestedAt: approval.request.requestedAt,
                expiresAt: approval.request.expiresAt, state: String(decoding: try EventCoding.encode(approval), as: UTF8.self))
        }
        try ApprovalStore.write(rows, on: connection)
    }
}
