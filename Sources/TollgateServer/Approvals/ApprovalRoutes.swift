import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TollgateCore

/// The approvals API at `/v1` (JSON; described by `/v1/openapi.json`): list, show, approve and deny approval
/// requests, for reviewers identified by bearer tokens whose hashes are in the configuration's `reviewers`.
///
/// Errors are JSON, `{"error": {"code": "already_decided", "message": "...", ...}}`, with a stable code.
struct ApprovalRoutes: Sendable {
    let book: ApprovalBook
    /// The reviewers in force (reloaded with the configuration file), read once per request.
    let live: LiveConfig
    let logger: Logger

    /// Bodies of approve and deny are small: a comment or a reason.
    static let maxBodyBytes = 16 * 1024
    /// Characters in a comment or a reason.
    static let maxTextLength = ApprovalDecisions.maxTextLength

    /// Every operation this API serves: the OpenAPI document (``ApprovalAPIDocument``) lists exactly these, by
    /// `operationId` (the raw value), method and path. Any other method on one of these paths is answered 405.
    enum Operation: String, CaseIterable {
        case openapi
        case listApprovals
        case showApproval
        case approve
        case deny

        var method: HTTPRequest.Method {
            switch self {
            case .openapi, .listApprovals, .showApproval: .get
            case .approve, .deny: .post
            }
        }

        /// The path as the router matches it.
        var path: String {
            switch self {
            case .openapi: "v1/openapi.json"
            case .listApprovals: "v1/approvals"
            case .showApproval: "v1/approvals/:id"
            case .approve: "v1/approvals/:id/approve"
            case .deny: "v1/approvals/:id/deny"
            }
        }

        /// The path as OpenAPI writes it: `/v1/approvals/{id}`.
        var documentedPath: String {
            "/" + path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        }
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        for operation in Operation.allCases {
            router.on(RouterPath(operation.path), method: operation.method) { request, context in
                let id = context.parameters.get("id") ?? ""
                switch operation {
                case .openapi: return Self.json(.ok, ApprovalAPIDocument.bytes)
                case .listApprovals: return await authorized(request, decides: false) { _ in try await list(request) }
                case .showApproval: return await authorized(request, decides: false) { _ in try await show(id) }
                case .approve, .deny:
                    return await authorized(request, decides: true) { reviewer in
                        try await decide(request, id: id, reviewer: reviewer, approve: operation == .approve)
                    }
                }
            }
            let allowed = operation.method.rawValue
            for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] where method != operation.method {
                router.on(RouterPath(operation.path), method: method) { _, _ in
                    Self.problem(.methodNotAllowed, "method_not_allowed", "this resource only answers \(allowed)", headers: [.allow: allowed])
                }
            }
        }
    }

    // MARK: - Authorisation

    /// Runs `body` for the reviewer whose bearer token the request carries (one who may decide, when `decides`), and
    /// turns its ``Problem`` and database errors into answers; shared with ``InventoryRoutes``.
    func authorized(_ request: Request, decides: Bool, _ body: (ReviewerConfig) async throws -> Response) async -> Response {
        let challenge: HTTPFields = [.wwwAuthenticate: #"Bearer realm="tollgate-approvals""#]
        guard let header = request.headers[.authorization] else {
            return Self.problem(
                .unauthorized, "unauthorized", "send a reviewer's token as Authorization: Bearer <token> (tollgate keys new NAME --reviewer ROLE)",
                headers: challenge)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", parts[1].utf8.count <= 512,
            let reviewer = live.snapshot.reviewers.reviewer(forToken: String(parts[1]))
        else {
            return Self.problem(.unauthorized, "unauthorized", "the token is not a reviewer's token", headers: challenge)
        }
        if decides, let problem = ApprovalDecisions.mayDecide(reviewer) {
            return Self.problem(problem.status, problem.code, problem.message)
        }
        do {
            return try await body(reviewer)
        } catch let problem as Problem {
            return Self.problem(problem.status, problem.code, problem.message, extra: problem.extra)
        } catch let error as ApprovalBookError {
            return Self.problem(.serviceUnavailable, "unavailable", "\(error); try again")
        } catch {
            logger.error("approvals API: the database failed", metadata: ["error": "\(error)"])
            return Self.problem(
                .serviceUnavailable, "unavailable", "the approvals cannot be read or written now (the database is unavailable); try again")
        }
    }

    // MARK: - Operations

    private func list(_ request: Request) async throws -> Response {
        var query = ApprovalQuery()
        let known: Set<String> = ["status", "server", "agent", "tool", "limit", "cursor"]
        for (name, _) in request.uri.queryParameters where !known.contains(String(name)) {
            throw Problem(
                .badRequest, "invalid_parameter",
                "unknown query parameter `\(String(name).prefix(64))`; known: \(known.sorted().joined(separator: ", "))")
        }
        let parameters = request.uri.queryParameters
        if let status = parameters["status"].map(String.init) {
            guard let value = Approval.Status(rawValue: status) else {
                throw Problem(.badRequest, "invalid_parameter", "status must be one of pending, approved, denied, expired")
            }
            query.status = value
        }
        for (name, keyPath) in [("server", \ApprovalQuery.server), ("agent", \ApprovalQuery.agent), ("tool", \ApprovalQuery.tool)] {
            guard let value = parameters[Substring(name)].map(String.init) else { continue }
            guard (1...200).contains(value.count), !value.unicodeScalars.contains("\0") else {
                throw Problem(.badRequest, "invalid_parameter", "\(name) must have 1 to 200 characters")
            }
            query[keyPath: keyPath] = value
        }
        if let limit = parameters["limit"].map(String.init) {
            guard let value = Int(limit), (1...500).contains(value) else {
                throw Problem(.badRequest, "invalid_parameter", "limit must be a whole number from 1 to 500")
            }
            query.limit = value
        }
        if let cursor = parameters["cursor"].map(String.init) {
            guard let value = ApprovalCursor(token: cursor) else {
                throw Problem(.badRequest, "invalid_cursor", "cursor is not one this API gave out (use next_cursor from a previous page)")
            }
            query.cursor = value
        }
        let page = try await book.list(query)
        let now = Date()
        let body: JSONValue = [
            "items": .array(page.items.map { ApprovalRepresentation.json($0, now: now, withArguments: false) }),
            "next_cursor": page.next.map { .string($0.token) } ?? .null,
        ]
        return Self.json(.ok, Array(body.canonicalJSON.utf8))
    }

    private func show(_ id: String) async throws -> Response {
        let approval = try await load(id)
        return Self.json(.ok, Array(ApprovalRepresentation.json(approval, now: Date(), withArguments: true).canonicalJSON.utf8))
    }

    private func decide(_ request: Request, id text: String, reviewer: ReviewerConfig, approve: Bool) async throws -> Response {
        guard let id = UUID(uuidString: text) else { throw Self.notFound(text) }
        let fields = try await Self.body(request, allowed: approve ? ["comment"] : ["reason"])
        let verdict: ApprovalDecisions.Verdict = approve ? .approve(comment: fields["comment"]) : .deny(reason: fields["reason"])
        let approval = try await ApprovalDecisions(book: book, logger: logger).decide(id, by: reviewer, verdict)
        return Self.json(.ok, Array(ApprovalRepresentation.json(approval, now: Date(), withArguments: true).canonicalJSON.utf8))
    }

    private func load(_ text: String) async throws -> Approval {
        guard let id = UUID(uuidString: text), let approval = try await book.load(id) else { throw Self.notFound(text) }
        return approval
    }

    static func notFound(_ id: String) -> Problem {
        Problem(.notFound, "not_found", "there is no approval with id `\(id.prefix(64))`")
    }

    static func problem(for refusal: ApprovalRefusal, approval: Approval) -> Problem {
        var extra: [String: JSONValue] = [:]
        let status: HTTPResponse.Status
        switch refusal {
        case .alreadyDecided(let outcome):
            status = .conflict
            var fields: [String: JSONValue] = ["status": .string(outcome.status.rawValue), "by": .array(outcome.by.map { .string($0) })]
            if let reason = outcome.reason { fields["reason"] = .string(reason) }
            if let at = outcome.at { fields["at"] = .string(EventCoding.timestamp(at)) }
            extra["outcome"] = .object(fields)
        case .alreadyGranted(_, let granted, let quorum):
            status = .conflict
            extra["approvals"] = .number(Double(granted))
            extra["quorum"] = .number(Double(quorum))
        case .selfApproval, .notAReviewer:
            status = .forbidden
        case .notApproved, .alreadyConsumed, .lapsed:
            status = .conflict
        }
        return Problem(status, refusal.code, refusal.description, extra: extra)
    }

    /// The body of approve or deny: empty, or a JSON object with only `allowed` string members.
    static func body(_ request: Request, allowed: Set<String>) async throws -> [String: String] {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw Problem(.contentTooLarge, "body_too_large", "a body may have at most \(maxBodyBytes) bytes")
        }
        var buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw Problem(.contentTooLarge, "body_too_large", "a body may have at most \(maxBodyBytes) bytes")
        }
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        guard contentType.hasPrefix("application/json") else {
            throw Problem(.unsupportedMediaType, "unsupported_media_type", "send the body as Content-Type: application/json")
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: Data(bytes))
        } catch {
            throw Problem(.badRequest, "invalid_body", "the body is not valid JSON: \(error)")
        }
        guard case .object(let members) = value else {
            throw Problem(.badRequest, "invalid_body", "the body must be a JSON object, such as {\"\(allowed.sorted()[0])\": \"...\"}")
        }
        var fields: [String: String] = [:]
        for (key, member) in members {
            guard allowed.contains(key) else {
                throw Problem(.badRequest, "invalid_body", "unknown field `\(key.prefix(64))`; allowed: \(allowed.sorted().joined(separator: ", "))")
            }
            guard case .string(let text) = member else { throw Problem(.badRequest, "invalid_body", "`\(key)` must be a string") }
            if let problem = ApprovalDecisions.textProblem(text, field: key) { throw problem }
            fields[key] = text
        }
        return fields
    }

    // MARK: - Responses

    struct Problem: Error {
        var status: HTTPResponse.Status
        var code: String
        var message: String
        var extra: [String: JSONValue] = [:]

        init(_ status: HTTPResponse.Status, _ code: String, _ message: String, extra: [String: JSONValue] = [:]) {
            self.status = status
            self.code = code
            self.message = message
            self.extra = extra
        }
    }

    static func json(_ status: HTTPResponse.Status, _ bytes: [UInt8], headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func problem(
        _ status: HTTPResponse.Status, _ code: String, _ message: String, extra: [String: JSONValue] = [:], headers: HTTPFields = [:]
    ) -> Response {
        var error = extra
        error["code"] = .string(code)
        error["message"] = .string(message)
        return json(status, Array(JSONValue.object(["error": .object(error)]).canonicalJSON.utf8), headers: headers)
    }
}

/// An approval as the API shows it.
enum ApprovalRepresentation {
    /// What a request held for its tool's definition shows the reviewer: the accepted hash and what differs from it.
    static func definitionChange(_ review: ApprovalRequested.DefinitionChangeReview) -> JSONValue {
        [
            "accepted_hash": review.acceptedHash.map { .string($0) } ?? .null,
            "changes": .array(
                review.changes.map {
                    ["member": .string($0.member), "old": $0.old.map { .string($0) } ?? .null, "new": $0.new.map { .string($0) } ?? .null]
                }),
            "changes_omitted": .number(Double(review.changesOmitted)), "note": review.note.map { .string($0) } ?? .null,
        ]
    }

    static func json(_ approval: Approval, now: Date, withArguments: Bool) -> JSONValue {
        let request = approval.request
        func time(_ date: Date?) -> JSONValue { date.map { .string(EventCoding.timestamp($0)) } ?? .null }
        var object: [String: JSONValue] = [
            "id": .string(approval.id.lowercasedString),
            "status": .string(approval.status(at: now).rawValue),
            "consumed": .bool(approval.consumption != nil),
            "call_id": .string(request.callID.lowercasedString),
            "agent": .string(request.agent), "grant": .string(request.grant), "session": .string(request.session),
            "server": .string(request.server), "tool": .string(request.tool),
            "arguments_hash": .string(request.argumentsHash), "arguments_storage": .string(request.argumentsStorage),
            "policy_hash": .string(request.policyHash), "rule": .string(request.rule),
            "reason": request.reason.map { .string($0) } ?? .null,
            "category": request.category.map { .string($0) } ?? .null,
            "quorum": .number(Double(request.quorum)), "reviewers": .array(request.reviewers.map { .string($0) }),
            "approvals": .array(
                approval.grants.map {
                    ["reviewer": .string($0.reviewer), "comment": $0.comment.map { .string($0) } ?? .null, "at": time($0.grantedAt)]
                }),
            "denial": approval.denial.map { ["reviewer": .string($0.reviewer), "reason": .string($0.reason), "at": time($0.deniedAt)] } ?? .null,
            "requested_at": time(request.requestedAt), "expires_at": time(request.expiresAt), "decided_at": time(approval.decidedAt),
            "consumed_at": time(approval.consumption?.consumedAt),
            "consumed_by_call": approval.consumption.map { .string($0.callID.lowercasedString) } ?? .null,
            "version": .number(Double(approval.version)),
            "definition_hash": request.definitionHash.map { .string($0) } ?? .null,
            "definition_change": request.definitionChange.map(definitionChange) ?? .null,
        ]
        if withArguments { object["arguments"] = request.arguments ?? .null }
        return .object(object)
    }
}
