import Foundation
import Logging
import TollgateCore
import TollgatePostgres

/// Accepting a tool's definition (docs/inventory.md, "Pinning"), whatever it came through (`POST /v1/tools/…/accept`,
/// `tollgate inventory accept`, a reviewer approving a call held for its definition): one `ToolDefinitionAccepted` on the
/// server's stream `tools-<server>`, appended at the version read (optimistic concurrency), and only for the definition
/// the tool has now, which is the one the reviewer was shown.
///
/// ```swift
/// let acceptance = DefinitionAcceptance(book: book, logger: logger)
/// let outcome = try await acceptance.accept(server: "github", tool: "create_issue", hash: shown, by: reviewer, comment: nil)
/// outcome.released   // the calls held for that definition, approved through the reviewer's decision
/// ```
struct DefinitionAcceptance: Sendable {
    let book: ApprovalBook
    let logger: Logger

    /// Appends that lose a race (another acceptance or a listing on the same stream) are retried this many times.
    static let attempts = 5
    /// Pending requests held for one definition that one acceptance decides, at most.
    static let maxHeldRequests = 2_000

    /// One tool's pin as its server's stream leaves it.
    struct ToolPin: Sendable, Hashable {
        /// The hash listed last; nil once removed.
        var current: String?
        /// The hash of the latest `ToolDefinitionAccepted`, or of a baseline `ToolDefinitionObserved`.
        var accepted: String?
    }

    /// Why a definition was not accepted.
    enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The inventory has no such tool (never listed by that server).
        case unknownTool(server: String, tool: String)
        /// The tool is removed: no definition is listed to accept.
        case removed(server: String, tool: String)
        /// The hash named is not the tool's current definition: a reviewer accepts only what they were shown.
        case notCurrent(server: String, tool: String, given: String, current: String)
        /// Every attempt lost a race on the stream.
        case contended(server: String)

        var description: String {
            switch self {
            case .unknownTool(let server, let tool):
                "the inventory has no tool `\(tool.prefix(256))` of server `\(server.prefix(256))` (tollgate inventory list)"
            case .removed(let server, let tool):
                "`\(tool.prefix(256))` of `\(server.prefix(256))` is removed: its server no longer lists it, so there is no definition to accept"
            case .notCurrent(_, _, let given, let current):
                "`\(given.prefix(80))` is not the tool's current definition: it is \(current) (read it, then accept that hash)"
            case .contended(let server):
                "the inventory of `\(server.prefix(256))` changed under every attempt to accept; try again"
            }
        }
    }

    /// What one acceptance did.
    struct Outcome: Sendable {
        var server: String
        var tool: String
        var hash: String
        /// The hash was already the accepted one: nothing was appended.
        var alreadyAccepted: Bool
        /// Requests held for this definition that the acceptance approved (their calls are released).
        var released: [UUID] = []
        /// Requests that counted the accepter's approval but need more (a quorum).
        var awaitingQuorum: [UUID] = []
        /// Requests the accepter may not decide (their own call, not among the request's reviewers), with why.
        var leftPending: [(id: UUID, reason: String)] = []
    }

    /// The pin of every tool the stream's `events` name.
    static func pins(_ events: [RecordedEvent]) throws -> [String: ToolPin] {
        var pins: [String: ToolPin] = [:]
        for recorded in events {
            switch try ToolDefinitionEvent.decode(type: recorded.type, data: recorded.data) {
            case .observed(let seen):
                pins[seen.tool, default: ToolPin()].current = seen.hash
                if seen.baseline == true { pins[seen.tool]?.accepted = seen.hash }
            case .changed(let changed): pins[changed.tool, default: ToolPin()].current = changed.hash
            case .removed(let removed): pins[removed.tool, default: ToolPin()].current = nil
            case .accepted(let accepted): pins[accepted.tool, default: ToolPin()].accepted = accepted.hash
            case nil: break
            }
        }
        return pins
    }

    /// Records `hash` as the accepted definition of `tool` unless it already is, retrying lost races.
    ///
    /// - Parameter requireCurrent: refuse (``Failure/notCurrent``) when `hash` is not the tool's current definition.
    /// - Returns: false when the hash was already the accepted one (nothing appended).
    func record(
        server: String, tool: String, hash: String, by: String, comment: String?, approvalID: UUID?, requireCurrent: Bool, now: Date
    ) async throws -> Bool {
        let stream = ToolDefinitionEvent.stream(server: server)
        for _ in 0..<Self.attempts {
            let events = try await book.store.read(stream: stream)
            guard let pin = try Self.pins(events)[tool] else { throw Failure.unknownTool(server: server, tool: tool) }
            if requireCurrent {
                guard let current = pin.current else { throw Failure.removed(server: server, tool: tool) }
                guard current == hash else { throw Failure.notCurrent(server: server, tool: tool, given: hash, current: current) }
            }
            if pin.accepted == hash { return false }
            let accepted = ToolDefinitionAccepted(
                server: server, tool: tool, hash: hash, by: by, comment: comment, approvalID: approvalID, acceptedAt: now)
            let event = NewEvent(type: ToolDefinitionAccepted.type, data: try EventCoding.encode(accepted))
            do {
                try await book.store.append(stream: stream, expectedVersion: .exactly(events.last?.version ?? 0), events: [event])
            } catch EventStoreError.wrongExpectedVersion {
                continue
            }
            logger.notice(
                "tool definition accepted",
                metadata: [
                    "server": "\(server)", "tool": "\(tool)", "hash": "\(hash)", "by": "\(by)",
                    "approval": "\(approvalID?.lowercasedString ?? "-")",
                ])
            return true
        }
        throw Failure.contended(server: server)
    }

    /// Accepts `hash`, which must be the tool's current definition, as `reviewer`; then approves, through the decision
    /// reviewers make (``ApprovalDecisions``), the pending requests holding calls for exactly that definition, so their
    /// calls run. A request the reviewer may not decide stays pending and is reported.
    func accept(
        server: String, tool: String, hash: String, by reviewer: ReviewerConfig, comment: String?, now: Date = Date()
    ) async throws
        -> Outcome
    {
        if let problem = ApprovalDecisions.mayDecide(reviewer) { throw problem }
        let appended = try await record(
            server: server, tool: tool, hash: hash, by: reviewer.id, comment: comment, approvalID: nil, requireCurrent: true, now: now)
        var outcome = Outcome(server: server, tool: tool, hash: hash, alreadyAccepted: !appended)
        let decisions = ApprovalDecisions(book: book, logger: logger)
        let note = comment ?? "accepted the tool's definition \(hash.prefix(12))"
        for id in try await heldRequests(server: server, tool: tool, hash: hash, now: now) {
            do {
                let approval = try await decisions.decide(id, by: reviewer, .approve(comment: String(note.prefix(ApprovalDecisions.maxTextLength))))
                if approval.status == .approved { outcome.released.append(id) } else { outcome.awaitingQuorum.append(id) }
            } catch let problem as ApprovalRoutes.Problem {
                outcome.leftPending.append((id, problem.message))
            }
        }
        return outcome
    }

    /// The pending requests that hold calls of `tool` for definition `hash`.
    func heldRequests(server: String, tool: String, hash: String, now: Date) async throws -> [UUID] {
        var query = ApprovalQuery(status: .pending, server: server, tool: tool, limit: 500)
        var found: [UUID] = []
        while found.count < Self.maxHeldRequests {
            let page = try await book.list(query)
            for approval in page.items
            where approval.request.definitionChange != nil && approval.request.definitionHash == hash && approval.status(at: now) == .pending {
                found.append(approval.id)
            }
            guard let next = page.next else { break }
            query.cursor = next
        }
        return Array(found.prefix(Self.maxHeldRequests))
    }

    /// After `approval` was approved: when it held a call for its tool's definition, that definition is accepted (by the
    /// reviewers who approved it, naming the request), unless it already is.
    func acceptApproved(_ approval: Approval) async {
        let request = approval.request
        guard approval.status == .approved, request.definitionChange != nil, let hash = request.definitionHash else { return }
        let by = approval.grants.map(\.reviewer).joined(separator: ", ")
        do {
            _ = try await record(
                server: request.server, tool: request.tool, hash: hash, by: by, comment: approval.grants.last?.comment,
                approvalID: approval.id, requireCurrent: false, now: approval.decidedAt ?? Date())
        } catch {
            logger.error(
                "an approved definition change could not be recorded as accepted; accept it with tollgate inventory accept",
                metadata: [
                    "approval": "\(approval.id.lowercasedString)", "server": "\(request.server)", "tool": "\(request.tool)",
                    "error": "\(error)",
                ])
        }
    }
}
