import Foundation
import TollgateCore
import TollgatePostgres

/// The approval requests in PostgreSQL: creating, joining and using them for held calls, deciding them for
/// reviewers, and reading them back. Every change is an event appended to the request's stream with its expected
/// version, folded into `tollgate.approvals` in the same transaction.
///
/// ```swift
/// let book = ApprovalBook(store: store)
/// switch try await book.decide(id, now: Date()) { $0.grant(by: "alice", comment: nil, now: Date()) } { ... }
/// ```
struct ApprovalBook: Sendable {
    let store: EventStore

    /// What `admit` did for a call that needs approval.
    enum Admission: Sendable {
        /// A new request was made; the call waits for it.
        case created(Approval)
        /// An identical call's request is pending; the call waits for that one.
        case joined(Approval)
        /// An identical call's request was approved and not yet used: this call used it and may run.
        case released(Approval)
    }

    /// How a decision on an approval ended.
    enum Decided: Sendable {
        case decided(Approval)
        case refused(ApprovalRefusal, Approval)
        case notFound
    }

    // MARK: - Held calls

    /// Finds an identical call's usable or pending request, or makes a new one, and records `call` (the call's
    /// decision, when it is not recorded yet) pointing at it, all in one transaction. Identical calls are serialised
    /// by a lock on their fingerprint, so two of them never make two requests.
    ///
    /// A new request is made only while its agent has fewer than `maxPending` pending (not expired) requests: the
    /// count and the request are serialised per agent by a lock taken after the fingerprint's (one order, so no
    /// deadlock), so concurrent calls, in this gateway or another, never make it one more. Joining or using a request
    /// adds none.
    ///
    /// - Throws: `ToolCallRecorder.NotAdmitted` when a usable approval exists but the call's limits have no room
    ///   (nothing was written; the approval stays usable). `TooManyPending` when a new request would be one more than
    ///   `maxPending` (nothing was written).
    func admit(
        call: ToolCallDecided?, request: ApprovalRequested, reservations: [CounterReservation], maxPending: Int? = nil, now: Date
    ) async throws -> Admission {
        let store = store
        let admission = try await store.client.withTransaction { connection -> Admission in
            let fingerprint = request.fingerprint
            try ApprovalStore.lock(fingerprint: fingerprint.description, on: connection)
            let candidates = try ApprovalStore.candidates(
                agent: fingerprint.agent, server: fingerprint.server, tool: fingerprint.tool, argumentsHash: fingerprint.argumentsHash,
                policyHash: fingerprint.policyHash, on: connection
            ).map(Self.approval).filter { $0.request.definitionHash == request.definitionHash }  // an approval covers one definition

            func recordCall(_ approvalID: UUID) throws {
                guard var call else { return }
                call.approvalID = approvalID
                let event = NewEvent(type: ToolCallDecided.type, data: EventCoding.encode(call))
                try store.append(stream: ToolCallRecorder.stream(call.callID), expectedVersion: .noStream, events: [event], on: connection)
            }

            if let usable = candidates.first(where: { $0.isUsable(at: now) }) {
                try ToolCallRecorder.reserve(reservations, on: connection)
                try recordCall(usable.id)
                guard case .success(let consumed) = usable.consume(by: request.callID, reservations: reservations, now: now) else {
                    throw ApprovalBookError.contended(usable.id)
                }
                return .released(try Self.append(consumed, to: usable, on: connection, store: store))
            }
            if let pending = candidates.first(where: { $0.status(at: now) == .pending }) {
                try recordCall(pending.id)
                return .joined(pending)
            }
            if let maxPending {
                try ApprovalStore.lock(fingerprint: "pending-approvals|" + fingerprint.agent, on: connection)
                let pending = try ApprovalStore.pendingCount(agent: fingerprint.agent, now: now, on: connection)
                if pending >= maxPending { throw TooManyPending(agent: fingerprint.agent, pending: pending, cap: maxPending) }
            }
            try recordCall(request.approvalID)
            let event = NewEvent(type: ApprovalRequested.type, data: try EventCoding.encode(request))
            try store.append(stream: ApprovalEvent.stream(request.approvalID), expectedVersion: .noStream, events: [event], on: connection)
            let folded = try ApprovalsProjection.fold(
                [(1, .requested(try EventCoding.decode(ApprovalRequested.self, from: event.data)))], on: connection)
            return .created(folded[request.approvalID]!)
        }
        store.noteCommit(notify: true)
        return admission
    }

    /// A new approval request would be one more than its agent may have pending.
    struct TooManyPending: Error {
        var agent: String
        var pending: Int
        var cap: Int
    }

    // MARK: - Deciding

    /// Reads the approval, asks `decision` what to append, and appends it at the version read (optimistic
    /// concurrency): when another decision got there first, reads again and asks again, so concurrent decisions
    /// resolve to one outcome and the others are told what it was. `reservations` are made in the same transaction
    /// (for a consumption).
    func decide(
        _ id: UUID, reservations: [CounterReservation] = [],
        _ decision: @escaping @Sendable (Approval) -> Result<[ApprovalEvent], ApprovalRefusal>
    ) async throws -> Decided {
        for _ in 0..<16 {
            guard let approval = try await load(id) else { return .notFound }
            let events: [ApprovalEvent]
            switch decision(approval) {
            case .failure(let refusal): return .refused(refusal, approval)
            case .success(let made): events = made
            }
            if events.isEmpty { return .decided(approval) }
            let store = store
            do {
                let updated = try await store.client.withTransaction { connection in
                    try ToolCallRecorder.reserve(reservations, on: connection)
                    return try Self.append(events, to: approval, on: connection, store: store)
                }
                store.noteCommit(notify: true)
                return .decided(updated)
            } catch EventStoreError.wrongExpectedVersion {
                continue
            }
        }
        throw ApprovalBookError.contended(id)
    }

    /// Appends `events` to the approval's stream at its version and folds them into its row.
    private static func append(
        _ events: [ApprovalEvent], to approval: Approval, on connection: PostgresConnection, store: EventStore
    ) throws
        -> Approval
    {
        let encoded = try events.map { NewEvent(type: $0.type, data: try $0.encoded()) }
        try store.append(stream: ApprovalEvent.stream(approval.id), expectedVersion: .exactly(approval.version), events: encoded, on: connection)
        // Fold what the log holds (times at the log's precision), so the row equals a replay of the stream.
        var items: [(version: Int64, event: ApprovalEvent)] = []
        for (offset, event) in encoded.enumerated() {
            guard let decoded = try ApprovalEvent.decode(type: event.type, data: event.data) else { continue }
            items.append((approval.version + 1 + Int64(offset), decoded))
        }
        let folded = try ApprovalsProjection.fold(items, on: connection)
        guard let updated = folded[approval.id] else { throw ApprovalBookError.missingRow(approval.id) }
        return updated
    }

    // MARK: - Reading

    func load(_ id: UUID) async throws -> Approval? {
        try await load([id])[id]
    }

    func load(_ ids: [UUID]) async throws -> [UUID: Approval] {
        try Self.byID(await ApprovalStore(client: store.client).states(ids))
    }

    /// The approvals whose version is past the one given for each: what changed since a waiter last looked.
    func load(newerThan known: [UUID: Int64]) async throws -> [UUID: Approval] {
        try Self.byID(await ApprovalStore(client: store.client).states(newerThan: known))
    }

    static func states(_ ids: [UUID], on connection: PostgresConnection, forUpdate: Bool) throws -> [UUID: Approval] {
        try byID(ApprovalStore.states(ids, forUpdate: forUpdate, on: connection))
    }

    /// An approval from its row's state.
    static func approval(_ state: JSONText) throws -> Approval {
        try EventCoding.decode(Approval.self, from: state.bytes)
    }

    private static func byID(_ states: [JSONText]) throws -> [UUID: Approval] {
        var approvals: [UUID: Approval] = [:]
        for state in states {
            let approval = try approval(state)
            approvals[approval.id] = approval
        }
        return approvals
    }

    /// Pending requests whose expiry has passed.
    func due(now: Date, limit: Int = 500) async throws -> [UUID] {
        try await ApprovalStore(client: store.client).due(now: now, limit: limit)
    }

    /// One page of requests, newest first.
    func list(_ query: ApprovalQuery) async throws -> ApprovalPage {
        let rows = try await ApprovalStore(client: store.client).page(
            status: query.status?.rawValue, server: query.server, agent: query.agent, tool: query.tool,
            after: query.cursor.map { ($0.requestedAtMicros, $0.approvalID) }, limit: query.limit + 1)
        var items: [Approval] = []
        var lastMicros: Int64 = 0
        for row in rows.prefix(query.limit) {
            items.append(try Self.approval(row.state))
            lastMicros = row.requestedAtMicros
        }
        let next = rows.count > query.limit ? ApprovalCursor(requestedAtMicros: lastMicros, approvalID: items.last!.id) : nil
        return ApprovalPage(items: items, next: next)
    }
}

/// A filter and a page for listing approvals.
struct ApprovalQuery: Sendable {
    var status: Approval.Status?
    var server: String?
    var agent: String?
    var tool: String?
    var limit = 50
    var cursor: ApprovalCursor?
}

struct ApprovalPage: Sendable {
    var items: [Approval]
    var next: ApprovalCursor?
}

/// Where a page ends: the last item's request time and id, as an opaque token (`<microseconds>.<uuid>` in base64url).
struct ApprovalCursor: Sendable, Hashable {
    var requestedAtMicros: Int64
    var approvalID: UUID

    var token: String {
        Data("\(requestedAtMicros).\(approvalID.lowercasedString)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    init(requestedAtMicros: Int64, approvalID: UUID) {
        self.requestedAtMicros = requestedAtMicros
        self.approvalID = approvalID
    }

    /// Reads a token; `nil` for anything that is not one.
    init?(token: String) {
        guard token.count <= 128 else { return nil }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else { return nil }
        self.init(requestedAtMicros: micros, approvalID: id)
    }
}

enum ApprovalBookError: Error, CustomStringConvertible {
    case contended(UUID)
    case missingRow(UUID)

    var description: String {
        switch self {
        case .contended(let id): "approval \(id.lowercasedString) changed under every attempt to decide it"
        case .missingRow(let id): "approval \(id.lowercasedString) has events but no row in tollgate.approvals"
        }
    }
}
