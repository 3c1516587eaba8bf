import Foundation
import HTTPTypes
import Hummingbird
import Logging
import TollgateCore
import TollgatePostgres

/// The tool inventory on `/v1` (docs/inventory.md; in `/v1/openapi.json`): list the recorded tools with their pin status
/// and what the policy in force gives each, show one with its definition and last diff, and accept a tool's current
/// definition. The same reviewers' tokens as the approvals API: any role reads, accepting is deciding (not auditors).
///
/// ```
/// GET  /v1/tools?server=github&status=changed&limit=100
/// GET  /v1/tools/github/create_issue
/// POST /v1/tools/github/create_issue/accept   {"hash": "9b1c…", "comment": "read the new description"}
/// ```
struct InventoryRoutes: Sendable {
    /// For the reviewers' authorisation, the error shapes and the approval decisions an acceptance makes.
    let approvals: ApprovalRoutes
    let policies: PolicyBook
    /// This gateway's record of the listings: read again after an acceptance, so that its agents' `tools/list` shows the
    /// newly accepted definition at once (nil: none).
    let recorder: ToolDefinitionRecorder?
    let logger: Logger

    /// Items per page: by default, and at most.
    static let defaultLimit = 100
    static let maxLimit = 500
    /// Bytes of a server's or tool's name (after percent-decoding), as the inventory records them.
    static let maxNameBytes = ToolDefinition.maxNameBytes
    static let statuses = ["accepted", "changed", "new", "removed"]

    enum Operation: String, CaseIterable {
        case listTools
        case showTool
        case acceptTool

        var method: HTTPRequest.Method { self == .acceptTool ? .post : .get }

        var path: String {
            switch self {
            case .listTools: "v1/tools"
            case .showTool: "v1/tools/:server/:tool"
            case .acceptTool: "v1/tools/:server/:tool/accept"
            }
        }

        var documentedPath: String {
            "/" + path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        }
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        for operation in Operation.allCases {
            router.on(RouterPath(operation.path), method: operation.method) { request, context in
                let server = context.parameters.get("server") ?? ""
                let tool = context.parameters.get("tool") ?? ""
                switch operation {
                case .listTools: return await approvals.authorized(request, decides: false) { _ in try await list(request) }
                case .showTool:
                    return await approvals.authorized(request, decides: false) { _ in
                        try await show(Self.name(server, "server"), Self.name(tool, "tool"))
                    }
                case .acceptTool:
                    return await approvals.authorized(request, decides: true) { reviewer in
                        try await accept(request, server: Self.name(server, "server"), tool: Self.name(tool, "tool"), reviewer: reviewer)
                    }
                }
            }
            let allowed = operation.method.rawValue
            for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] where method != operation.method {
                router.on(RouterPath(operation.path), method: method) { _, _ in
                    ApprovalRoutes.problem(
                        .methodNotAllowed, "method_not_allowed", "this resource only answers \(allowed)", headers: [.allow: allowed])
                }
            }
        }
    }

    typealias Problem = ApprovalRoutes.Problem

    /// A name from the path, percent-decoded (a tool's name may hold `/` as `%2F`).
    static func name(_ raw: String, _ what: String) throws -> String {
        guard let name = raw.removingPercentEncoding, !name.isEmpty, name.utf8.count <= maxNameBytes, !name.unicodeScalars.contains("\0") else {
            throw Problem(.badRequest, "invalid_parameter", "the \(what) name must be 1 to \(maxNameBytes) bytes of percent-encoded UTF-8")
        }
        return name
    }

    // MARK: - Operations

    private func list(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        let known: Set<String> = ["server", "category", "level", "status", "limit", "cursor"]
        for (name, _) in parameters where !known.contains(String(name)) {
            throw Problem(
                .badRequest, "invalid_parameter",
                "unknown query parameter `\(String(name).prefix(64))`; known: \(known.sorted().joined(separator: ", "))")
        }
        var filter = InventoryStore.Filter()
        if let server = parameters["server"].map(String.init) {
            guard !server.isEmpty, server.utf8.count <= Self.maxNameBytes, !server.unicodeScalars.contains("\0") else {
                throw Problem(.badRequest, "invalid_parameter", "server must have 1 to \(Self.maxNameBytes) bytes")
            }
            filter.server = server
        }
        func oneOf(_ name: String, _ allowed: [String]) throws -> String? {
            guard let value = parameters[Substring(name)].map(String.init) else { return nil }
            guard allowed.contains(value) else {
                throw Problem(.badRequest, "invalid_parameter", "\(name) must be one of \(allowed.joined(separator: ", "))")
            }
            return value
        }
        filter.category = try oneOf("category", RiskCategory.allCases.map(\.rawValue))
        filter.level = try oneOf("level", RiskLevel.allCases.map(\.rawValue))
        filter.status = try oneOf("status", Self.statuses)
        var limit = Self.defaultLimit
        if let text = parameters["limit"].map(String.init) {
            guard let value = Int(text), (1...Self.maxLimit).contains(value) else {
                throw Problem(.badRequest, "invalid_parameter", "limit must be a whole number from 1 to \(Self.maxLimit)")
            }
            limit = value
        }
        var after: (server: String, tool: String)?
        if let token = parameters["cursor"].map(String.init) {
            guard let position = Self.position(token: token) else {
                throw Problem(.badRequest, "invalid_cursor", "cursor is not one this API gave out (use next_cursor from a previous page)")
            }
            after = position
        }
        let rows = try await InventoryStore(client: approvals.book.store.client).page(filter, after: after, limit: limit + 1)
        let items = rows.prefix(limit)
        let next = rows.count > limit ? items.last.map { Self.token(server: $0.server, tool: $0.tool) } : nil
        let body: JSONValue = ["items": .array(items.map { item($0, full: false) }), "next_cursor": next.map { .string($0) } ?? .null]
        return ApprovalRoutes.json(.ok, Array(body.canonicalJSON.utf8))
    }

    private func show(_ server: String, _ tool: String) async throws -> Response {
        guard let row = try await InventoryStore(client: approvals.book.store.client).page(.init(server: server, tool: tool), limit: 1).first else {
            throw Self.notFound(server, tool)
        }
        return ApprovalRoutes.json(.ok, Array(item(row, full: true).canonicalJSON.utf8))
    }

    private func accept(_ request: Request, server: String, tool: String, reviewer: ReviewerConfig) async throws -> Response {
        let fields = try await ApprovalRoutes.body(request, allowed: ["hash", "comment"])
        guard let hash = fields["hash"] else {
            throw Problem(.badRequest, "invalid_body", "`hash` is required: the hash of the definition you read (GET /v1/tools/{server}/{tool})")
        }
        guard hash.utf8.count == 64, hash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw Problem(.badRequest, "invalid_body", "`hash` must be 64 lowercase hexadecimal digits (a definition's SHA-256)")
        }
        let outcome: DefinitionAcceptance.Outcome
        do {
            outcome = try await DefinitionAcceptance(book: approvals.book, logger: logger).accept(
                server: server, tool: tool, hash: hash, by: reviewer, comment: fields["comment"])
        } catch let failure as DefinitionAcceptance.Failure {
            switch failure {
            case .unknownTool: throw Self.notFound(server, tool)
            case .removed: throw Problem(.conflict, "removed", failure.description)
            case .notCurrent(_, _, _, let current):
                throw Problem(.conflict, "not_current", failure.description, extra: ["current_hash": .string(current)])
            case .contended: throw Problem(.serviceUnavailable, "unavailable", failure.description)
            }
        }
        if !outcome.alreadyAccepted { _ = try? await recorder?.recordedHash(server: server, tool: tool) }
        let body: JSONValue = [
            "server": .string(server), "tool": .string(tool), "hash": .string(hash), "already_accepted": .bool(outcome.alreadyAccepted),
            "released": .array(outcome.released.map { .string($0.lowercasedString) }),
            "awaiting_quorum": .array(outcome.awaitingQuorum.map { .string($0.lowercasedString) }),
            "left_pending": .array(outcome.leftPending.map { ["id": .string($0.id.lowercasedString), "reason": .string($0.reason)] }),
        ]
        return ApprovalRoutes.json(.ok, Array(body.canonicalJSON.utf8))
    }

    static func notFound(_ server: String, _ tool: String) -> Problem {
        Problem(.notFound, "not_found", "the inventory has no tool `\(tool.prefix(64))` of server `\(server.prefix(64))`")
    }

    // MARK: - Representation

    /// What the policy in force for the tool's server gives a call of it with no arguments: `allow`, `deny`, `limited`,
    /// `require_approval` or `hidden`, and the rule; nil when the server has no policy loaded.
    func decision(_ row: InventoryStore.Row) -> (decision: String, rule: String)? {
        guard let policy = policies.policy(for: row.server) else { return nil }
        return ToolInventory.decision(of: policy, server: row.server, tool: row.tool, category: RiskCategory(rawValue: row.category) ?? .other)
    }

    func item(_ row: InventoryStore.Row, full: Bool) -> JSONValue {
        func parsed(_ text: String?) -> JSONValue { text.flatMap { try? JSONValue(parsing: $0) } ?? .null }
        func time(_ date: Date?) -> JSONValue { date.map { .string(EventCoding.timestamp($0)) } ?? .null }
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        let decided = decision(row)
        var object: [String: JSONValue] = [
            "server": .string(row.server), "tool": .string(row.tool), "hash": .string(row.hash), "status": .string(row.status),
            "accepted_hash": text(row.acceptedHash), "accepted_by": text(row.acceptedBy), "accepted_at": time(row.acceptedAt),
            "accepted_approval": text(row.acceptedApproval), "category": .string(row.category), "level": .string(row.level),
            "reasons": parsed(row.reasons), "first_seen": time(row.firstSeen), "last_seen": time(row.lastSeen),
            "changes": .number(Double(row.changes)), "decision": text(decided?.decision), "rule": text(decided?.rule),
        ]
        if full {
            object["definition"] = parsed(row.definition)
            object["definition_bytes"] = .number(Double(row.definitionBytes))
            object["last_change"] = parsed(row.lastChange)
        }
        return .object(object)
    }

    // MARK: - Cursor

    /// The last item's server and tool, as an opaque token (JSON `[server, tool]` in base64url).
    static func token(server: String, tool: String) -> String {
        Data(JSONValue.array([.string(server), .string(tool)]).canonicalJSON.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Reads a token; nil for anything that is not one.
    static func position(token: String) -> (server: String, tool: String)? {
        guard token.count <= 2048 else { return nil }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let value = try? JSONValue(parsing: data), let parts = value.arrayValue, parts.count == 2,
            let server = parts[0].stringValue, let tool = parts[1].stringValue,
            server.utf8.count <= maxNameBytes, tool.utf8.count <= maxNameBytes
        else { return nil }
        return (server, tool)
    }
}
