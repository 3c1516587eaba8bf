import Crypto
import Foundation
import TollgateCore
import TollgatePostgres

/// `tollgate audit verify`: recomputes the seal chain over the whole log and compares it with the stored seals, and
/// checks every approved (or used) row of `tollgate.approvals` against the log.
///
/// Reads the events and the seals in global order, a page at a time, side by side. An event whose recomputed seal
/// differs was changed; a seal without its event means the event was removed; an event without a seal, before the last
/// seal, was inserted. Events after the last seal are not sealed yet (the projector seals them within moments).
///
/// ```swift
/// let report = try await AuditVerifier(client: client).verify()
/// if let first = report.breaks.first { print(first) }
/// ```
public struct AuditVerifier: Sendable {
    public let client: PostgresClient
    public var pageSize = 20_000

    public init(client: PostgresClient) {
        self.client = client
    }

    public struct Break: Sendable, CustomStringConvertible {
        public enum Kind: String, Sendable { case changed, removed, inserted }
        public var kind: Kind
        public var position: Int64
        public var transactionID: UInt64
        public var streamID: String?
        public var version: Int64?
        public var type: String?

        public var description: String {
            let what =
                streamID.map { "the event at position \(position) (stream \($0), version \(version ?? 0), \(type ?? "?"))" }
                ?? "the event at position \(position) (transaction \(transactionID))"
            switch kind {
            case .changed: return "\(what) was changed: its seal does not match"
            case .removed: return "\(what) was removed: it is sealed but no longer in the log"
            case .inserted: return "\(what) was inserted: it has no seal, though events after it are sealed"
            }
        }
    }

    public struct Report: Sendable {
        /// Events checked against their seals.
        public var checked = 0
        /// Events after the last seal (not sealed yet).
        public var unsealed = 0
        /// Every break found, in log order (the first is the first thing altered).
        public var breaks: [Break] = []
        /// The last seal, as `position:chain`: record it elsewhere, and pass it to `--expect` later.
        public var head: String?
        /// Whether the seal at the expected position had the expected chain (nil when nothing was expected).
        public var expectationMet: Bool?
        /// Approved or used rows of `tollgate.approvals` checked against their streams.
        public var approvalsChecked = 0
        /// Rows the log does not justify, by approval id.
        public var approvalBreaks: [ApprovalBreak] = []
    }

    /// A row of `tollgate.approvals` that says more than the log: approved without its quorum of `ApprovalGranted`, or
    /// unused though the log holds its `ApprovalConsumed`. Held calls and identical retries trust the row, so such a
    /// row is an approval nobody gave.
    public struct ApprovalBreak: Sendable, CustomStringConvertible {
        public enum Kind: String, Sendable { case approvedWithoutQuorum, usedInTheLog }
        public var kind: Kind
        public var approvalID: UUID
        /// The row's status, and the log's (the fold of the stream at the row's version; nil: the stream is missing).
        public var rowStatus: String
        public var logStatus: String?
        /// Distinct reviewers' `ApprovalGranted` in the log, and the quorum the request asked for.
        public var grants: Int
        public var quorum: Int?

        public var description: String {
            let id = approvalID.lowercasedString
            switch kind {
            case .approvedWithoutQuorum:
                guard let logStatus else {
                    return "approval \(id) is \(rowStatus) in tollgate.approvals, but the log has no request for it"
                }
                return "approval \(id) is \(rowStatus) in tollgate.approvals, but the log holds \(grants) of the \(quorum ?? 0) "
                    + "ApprovalGranted it needs (the log makes it \(logStatus))"
            case .usedInTheLog:
                return "approval \(id) is unused in tollgate.approvals, but the log holds its ApprovalConsumed: it could run a second call"
            }
        }
    }

    /// - Parameter expect: a head recorded earlier (`position:chain`): the seal at that position must still be that
    ///   chain, which catches a rewrite of the whole chain by someone who controls the database.
    public func verify(expect: (position: Int64, chain: String)? = nil) async throws -> Report {
        var report = Report()
        let head = try await client.withConnection { connection in try EventSealProjection.head(on: connection) }
        report.head = head.map { "\($0.position.position):\(Hex.lowercase($0.chain))" }
        var chain = EventSeal.genesis
        // The next page is read while this one is hashed: the database renders rows on one core, we hash on the other.
        var next = fetch(after: .start)
        while true {
            let page = try await next.value
            if page.events.isEmpty && page.seals.isEmpty { break }
            if let upper = page.upper { next = fetch(after: upper) }
            let rows = page.events
            let sealed = page.seals
            let leaves = try Self.leaves(page)
            var e = 0
            var s = 0
            while e < rows.count || s < sealed.count {
                let eventKey = e < rows.count ? rows[e] : nil
                let sealKey = s < sealed.count ? sealed[s].position : nil
                if let eventKey, let sealKey, eventKey == sealKey {
                    let computed = EventSeal.next(chain, leaf: leaves[e])
                    report.checked += 1
                    if !Self.matches(computed, hex: sealed[s].chain) {
                        report.breaks.append(try page.breakOf(.changed, at: e))
                        guard let stored = Hex.bytes(sealed[s].chain) else { throw AuditError.badSeal(sealed[s].chain) }
                        chain = stored
                    } else {
                        chain = computed
                    }
                    if let expect, expect.position == eventKey.position { report.expectationMet = sealed[s].chain == expect.chain }
                    e += 1
                    s += 1
                } else if let eventKey, sealKey.map({ eventKey < $0 }) ?? true {
                    if let head, !(head.position < eventKey) {
                        report.breaks.append(try page.breakOf(.inserted, at: e))
                    } else {
                        report.unsealed += 1
                    }
                    e += 1
                } else if let sealKey {
                    report.breaks.append(Break(kind: .removed, position: sealKey.position, transactionID: sealKey.transactionID))
                    guard let stored = Hex.bytes(sealed[s].chain) else { throw AuditError.badSeal(sealed[s].chain) }
                    chain = stored
                    if let expect, expect.position == sealKey.position { report.expectationMet = sealed[s].chain == expect.chain }
                    s += 1
                }
            }
            if page.upper == nil { break }
        }
        if expect != nil, report.expectationMet == nil { report.expectationMet = false }
        (report.approvalsChecked, report.approvalBreaks) = try await checkApprovals()
        return report
    }

    /// Every approved or used row of `tollgate.approvals`, folded again from its stream (`Approval.fold`, as the
    /// projection folds) up to the row's version: the row must be approved there, and used if the stream says so.
    public func checkApprovals() async throws -> (checked: Int, breaks: [ApprovalBreak]) {
        try await client.withConnection { connection in
            var checked = 0
            var breaks: [ApprovalBreak] = []
            var after = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
            while true {
                let items = try ApprovalStore.decided(after: after, on: connection)
                guard !items.isEmpty else { break }
                after = items.last?.approvalID ?? after
                var streams: [String: [(version: Int64, event: ApprovalEvent)]] = [:]
                for row in try EventStore.events(ofStreams: items.map { ApprovalEvent.stream($0.approvalID) }, on: connection) {
                    guard let event = try? ApprovalEvent.decode(type: row.type, data: row.data) else { continue }
                    streams[row.streamID, default: []].append((row.version, event))
                }
                for item in items {
                    checked += 1
                    let stream = streams[ApprovalEvent.stream(item.approvalID)] ?? []
                    let atRow = Approval.fold(stream.filter { $0.version <= item.version }.map(\.event))
                    let whole = Approval.fold(stream.map(\.event))
                    if atRow?.status != .approved {
                        breaks.append(
                            ApprovalBreak(
                                kind: .approvedWithoutQuorum, approvalID: item.approvalID,
                                rowStatus: item.consumed ? "\(item.status) and used" : item.status,
                                logStatus: atRow?.status.rawValue, grants: atRow?.grants.count ?? 0, quorum: atRow?.request.quorum))
                    } else if item.status == "approved", !item.consumed, whole?.consumption != nil {
                        breaks.append(
                            ApprovalBreak(
                                kind: .usedInTheLog, approvalID: item.approvalID, rowStatus: item.status, logStatus: whole?.status.rawValue,
                                grants: whole?.grants.count ?? 0, quorum: whole?.request.quorum))
                    }
                }
                if items.count < ApprovalStore.decidedPageSize { break }
            }
            return (checked, breaks)
        }
    }

    /// One page: events after `cursor` (their positions, and the rows as libpq holds them, hashed where they lie),
    /// and the seals from `cursor` up to the last of them (or all remaining seals when no event is left).
    struct Page: Sendable {
        var events: [LogPosition]
        var result: PostgresResult?
        var seals: [SealStore.Seal]
        var upper: LogPosition? { events.last }

        /// The event at `index` as a break of the chain, with its stream, version and type.
        func breakOf(_ kind: Break.Kind, at index: Int) throws -> Break {
            var found = Break(kind: kind, position: events[index].position, transactionID: events[index].transactionID)
            if let row = result?[index] {
                found.streamID = try row.decode(String.self, Column.streamID)
                found.version = try row.binaryInt64(Column.version)
                found.type = try row.decode(String.self, Column.type)
            }
            return found
        }
    }

    /// The columns of a page's events.
    typealias Column = SealStore.EventColumn

    private func fetch(after cursor: LogPosition) -> Task<Page, any Error> {
        let pageSize = pageSize
        let client = client
        return Task {
            try await client.withConnection { connection in
                let result = try SealStore.events(after: cursor, limit: pageSize, on: connection)
                var events: [LogPosition] = []
                events.reserveCapacity(result.rowCount)
                for index in 0..<result.rowCount {
                    let row = result[index]
                    events.append(
                        LogPosition(
                            transactionID: UInt64(bitPattern: try row.binaryInt64(Column.transactionID)),
                            position: try row.binaryInt64(Column.position)))
                }
                let sealed = try SealStore.seals(after: cursor, through: events.last, on: connection)
                return Page(events: events, result: events.isEmpty ? nil : result, seals: sealed)
            }
        }
    }

    /// One event's leaf from made-up fields and `data`: what `ops/bench/audit` times.
    public static func leafForBenchmark(position: Int64, data: [UInt8]) throws -> [UInt8] {
        try EventSeal.leaf(
            position: position, transactionID: 123_456, streamID: "call-5b0c7c1e-0000-4000-8000-000000000000", version: 1, type: "ToolCallDecided",
            recordedMicros: 1_796_198_709_000_000, data: data, metadata: Array("{}".utf8))
    }

    /// Whether `digest` is the 64 lowercase hex digits `hex`, without making text of it.
    static func matches(_ digest: [UInt8], hex: String) -> Bool {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var hex = hex
        return hex.withUTF8 { utf8 in
            guard utf8.count == digest.count * 2 else { return false }
            for (index, byte) in digest.enumerated()
            where utf8[2 * index] != digits[Int(byte >> 4)] || utf8[2 * index + 1] != digits[Int(byte & 0x0F)] {
                return false
            }
            return true
        }
    }

    /// Each event's leaf hash, read from the page's rows where libpq holds them, on one thread: the database renders
    /// the next page on the other core meanwhile.
    static func leaves(_ page: Page) throws -> [SHA256Digest] {
        guard let result = page.result else { return [] }
        var hasher = EventSeal.LeafHasher()
        var leaves: [SHA256Digest] = []
        leaves.reserveCapacity(page.events.count)
        for (index, key) in page.events.enumerated() {
            let row = result[index]
            let version = try row.binaryInt64(Column.version)
            let recorded = try row.binaryInt64(Column.recordedAt) + Self.postgresEpochMicros
            let leaf = try row.withBytes(Column.streamID) { streamID in
                try row.withBytes(Column.type) { type in
                    try row.withBytes(Column.data) { data in
                        try row.withBytes(Column.metadata) { metadata in
                            try hasher.leaf(
                                position: key.position, transactionID: key.transactionID, streamID: streamID, version: version, type: type,
                                recordedMicros: recorded, data: try Self.jsonbText(data), metadata: try Self.jsonbText(metadata))
                        }
                    }
                }
            }
            leaves.append(leaf)
        }
        return leaves
    }

    /// PostgreSQL's epoch (2000-01-01 UTC) in microseconds since the Unix epoch: binary `timestamptz` counts from it.
    static let postgresEpochMicros: Int64 = 946_684_800_000_000

    /// The text of a binary `jsonb` value: its format version (1) and then the same text as `jsonb::text`.
    static func jsonbText(_ bytes: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer {
        guard bytes.count >= 1, bytes[0] == 1 else { throw AuditError.unknownJSONBFormat(bytes.first ?? 0) }
        return UnsafeRawBufferPointer(rebasing: bytes[1...])
    }
}
