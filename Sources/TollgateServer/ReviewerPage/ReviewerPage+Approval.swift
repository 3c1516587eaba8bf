import Foundation
import HTTPTypes
import Hummingbird
import TollgateCore
import TollgatePostgres

/// One approval request: everything about it, its arguments, its history from the log, and for a reviewer or admin
/// while it is pending the approve and deny forms; and the POSTs of those forms.
extension ReviewerPage {
    func approvalPage(_ request: Request, id text: String, session: ReviewerSession) async throws -> Response {
        let id = try Self.approvalID(text)
        var notice: String?
        switch request.uri.queryParameters["done"].map(String.init) {
        case "approved"?: notice = "Your approval is recorded."
        case "denied"?: notice = "Your denial is recorded; the agent is told your reason."
        default: break
        }
        return try await approvalResponse(id, session: session, status: .ok, notice: notice, problem: nil, kept: [:])
    }

    /// The id of a request from its path segment: a UUID, or a 404 in words.
    static func approvalID(_ text: String) throws(ReviewerPageProblem) -> UUID {
        guard let id = UUID(uuidString: text) else { throw notFound(text) }
        return id
    }

    static func notFound(_ text: String) -> ReviewerPageProblem {
        ReviewerPageProblem(
            .notFound, "There is no approval request with the id \(String(text.prefix(64))).", code: "not_found")
    }

    /// The request's page with `status`, a notice or the refusal, and what the reviewer typed (`kept`) back in the forms.
    func approvalResponse(
        _ id: UUID, session: ReviewerSession, status: HTTPResponse.Status, notice: String?, problem: ReviewerPageProblem?,
        kept: [String: String]
    ) async throws -> Response {
        guard let approval = try await book.load(id) else { throw Self.notFound(id.lowercasedString) }
        let history = try await history(of: approval)
        let body = Self.approvalBody(approval, history: history, session: session, now: Date(), notice: notice, problem: problem, kept: kept)
        return Self.html(
            status, ReviewerPageLayout.page(title: "\(approval.request.tool) for \(approval.request.agent)", session: session, body: body))
    }

    /// `data-status`: the status as of now, `consumed` once an approved request ran its call.
    /// A call held for its tool's definition: what changed since the accepted definition, member by member (approving
    /// accepts the new one, docs/inventory.md).
    static func definitionChange(_ change: ApprovalRequested.DefinitionChangeReview, hash: String?) -> String {
        var html = "<h2 id=\"definition-title\">Tool definition</h2>\n"
        let seen = HTML.escape(String((hash ?? "").prefix(12)))
        if let accepted = change.acceptedHash {
            html += """
                <p class="warning" id="definition-changed">The server changed this tool's definition since the one accepted \
                (<code>\(HTML.escape(String(accepted.prefix(12))))…</code> → <code>\(seen)…</code>). Approving this call also accepts \
                the new definition.</p>

                """
        } else {
            html += """
                <p class="warning" id="definition-changed">No definition of this tool has been accepted: it is new since the server's \
                first listing (definition <code>\(seen)…</code>). Approving this call also accepts it.</p>

                """
        }
        if let note = change.note { html += "<p class=\"hint\">\(HTML.text(note))</p>\n" }
        guard !change.changes.isEmpty else { return html }
        html += "<table id=\"definition-diff\" aria-labelledby=\"definition-title\">\n"
        html += "<thead><tr><th scope=\"col\">Member</th><th scope=\"col\">Accepted</th><th scope=\"col\">Now</th></tr></thead>\n<tbody>\n"
        for item in change.changes {
            html += """
                <tr><td data-label="Member"><code>\(HTML.text(item.member))</code></td>\
                <td data-label="Accepted"><pre>\(item.old.map(HTML.text) ?? "(absent)")</pre></td>\
                <td data-label="Now"><pre>\(item.new.map(HTML.text) ?? "(absent)")</pre></td></tr>

                """
        }
        html += "</tbody>\n</table>\n"
        if change.changesOmitted > 0 { html += "<p class=\"hint\">\(change.changesOmitted) more changed members are not shown.</p>\n" }
        return html
    }

    static func pageStatus(_ approval: Approval, now: Date) -> String {
        if approval.consumption != nil { return "consumed" }
        return approval.status(at: now).rawValue
    }

    static func approvalBody(
        _ approval: Approval, history: [HistoryItem], session: ReviewerSession, now: Date, notice: String?, problem: ReviewerPageProblem?,
        kept: [String: String]
    ) -> String {
        let request = approval.request
        let id = approval.id.lowercasedString
        let status = pageStatus(approval, now: now)
        var html = "<section id=\"approval\" data-status=\"\(status)\" aria-labelledby=\"approval-title\">\n"
        html += "<h1 id=\"approval-title\">\(HTML.text(request.tool)) <span class=\"muted\">on \(HTML.text(request.server))</span></h1>\n"
        if let notice { html += "<p role=\"status\" id=\"notice\" class=\"notice\">\(HTML.escape(notice))</p>\n" }
        if let problem { html += ReviewerPageLayout.errorParagraph(problem.text) + "\n" }
        html += "<p class=\"status status-\(status)\">\(statusSentence(approval, now: now))</p>\n"
        let reviewers = request.reviewers.isEmpty ? "any reviewer" : request.reviewers.map { HTML.text($0) }.joined(separator: ", ")
        let rows: [(String, String)] = [
            ("Agent", HTML.text(request.agent) + " <span class=\"muted\">(grant \(HTML.text(request.grant)))</span>"),
            ("Server", HTML.text(request.server)),
            ("Tool", HTML.text(request.tool)),
            ("Risk", risk(request)),
            ("Rule", "<code>\(HTML.text(request.rule))</code>" + (request.reason.map { " " + HTML.text($0) } ?? "")),
            ("Requested", time(request.requestedAt, now: now)),
            ("Expires", time(request.expiresAt, now: now)),
            ("Approvals", quorum(approval) + " <span class=\"muted\">(decided by \(reviewers))</span>"),
            ("Request id", "<code>\(id)</code>"),
            ("Policy version", "<code>\(HTML.escape(String(request.policyHash.prefix(16))))…</code>"),
        ]
        html += "<dl class=\"facts\">\n"
        for (term, value) in rows { html += "<div><dt>\(term)</dt><dd>\(value)</dd></div>\n" }
        html += "</dl>\n"

        if let change = request.definitionChange { html += definitionChange(change, hash: request.definitionHash) }

        html += "<h2 id=\"arguments-title\">Arguments</h2>\n"
        if let arguments = request.arguments {
            let shown = ReviewerPageJSON.html(arguments)
            if shown.invisibles > 0 {
                html += """
                    <p class="warning" id="invisibles">These arguments contain \(shown.invisibles) invisible or text-reordering \
                    character\(shown.invisibles == 1 ? "" : "s") (such as bidirectional controls), shown highlighted as \\u escapes. \
                    Read them carefully.</p>

                    """
            }
            if request.argumentsStorage != "full" {
                html += "<p class=\"hint\">Only the argument names are kept (store_arguments: \(HTML.escape(request.argumentsStorage))).</p>\n"
            }
            html += "<pre id=\"arguments\" aria-labelledby=\"arguments-title\" tabindex=\"0\">\(shown.html)</pre>\n"
        } else {
            html += """
                <pre id="arguments" aria-labelledby="arguments-title">(not stored: store_arguments is \(HTML.escape(request.argumentsStorage)); \
                SHA-256 \(HTML.escape(request.argumentsHash)))</pre>

                """
        }

        if status == "pending" && session.mayDecide {
            let granted = approval.grants.contains { $0.reviewer == session.reviewer.id }
            if granted {
                let left = approval.request.quorum - approval.grants.count
                html += """
                    <p class="notice" id="approved-by-you">You have approved this request; it needs \(left) more approval\(left == 1 ? "" : "s") \
                    from other reviewers.</p>

                    """
            }
            html += decisionForms(id: id, session: session, kept: kept, approve: !granted)
        } else if status == "pending" {
            html += "<p class=\"hint\" id=\"read-only\">You are an \(session.reviewer.role.rawValue): you may read requests, not decide them.</p>\n"
        }

        html += "<h2>History</h2>\n<ol id=\"history\">\n"
        for item in history {
            html += "<li data-event=\"\(item.kind)\">\(time(item.at, now: now)): \(item.html)</li>\n"
        }
        html += "</ol>\n</section>\n"
        return html
    }

    static func statusSentence(_ approval: Approval, now: Date) -> String {
        switch approval.status(at: now) {
        case .pending:
            return "Pending: \(approval.grants.count) of \(approval.request.quorum) approvals."
        case .approved:
            let by = approval.grants.map { HTML.text($0.reviewer) }.joined(separator: ", ")
            if let consumption = approval.consumption {
                return "Approved by \(by); the call ran (call <code>\(consumption.callID.lowercasedString)</code>)."
            }
            return "Approved by \(by); the call has not run yet."
        case .denied:
            return "Denied by \(HTML.text(approval.denial?.reviewer ?? "a reviewer")): \(HTML.text(approval.denial?.reason ?? ""))"
        case .expired:
            return "Expired: nobody decided before it expired."
        }
    }

    /// The approve form (unless `approve` is false: this reviewer approved already) and the deny form.
    static func decisionForms(id: String, session: ReviewerSession, kept: [String: String], approve: Bool = true) -> String {
        let limit = ApprovalDecisions.maxTextLength
        var html = "<div class=\"decide\">\n"
        if approve {
            html += """
                <form id="approve" method="post" action="/ui/approvals/\(id)/approve" class="stack">
                <h2>Approve</h2>
                \(ReviewerPageLayout.csrfField(session))
                <label for="comment">Comment (optional)</label>
                <textarea id="comment" name="comment" rows="3" maxlength="\(limit)">\(HTML.escape(kept["comment"] ?? ""))</textarea>
                <button type="submit" class="approve">Approve</button>
                </form>

                """
        }
        return html + """
            <form id="deny" method="post" action="/ui/approvals/\(id)/deny" class="stack">
            <h2>Deny</h2>
            \(ReviewerPageLayout.csrfField(session))
            <label for="reason">Reason (required; the agent is shown it)</label>
            <textarea id="reason" name="reason" rows="3" maxlength="\(limit)" required>\(HTML.escape(kept["reason"] ?? ""))</textarea>
            <button type="submit" class="deny">Deny</button>
            </form>
            </div>

            """
    }

    // MARK: - Deciding

    func decide(_ request: Request, id text: String, approve: Bool, session: ReviewerSession) async throws -> Response {
        let field = approve ? "comment" : "reason"
        let form = try await checkForm(request, session: session, allowed: [field])
        let id = try Self.approvalID(text)
        let typed = form[field]
        // A browser sends an empty comment for an untouched field: no comment.
        let verdict: ApprovalDecisions.Verdict =
            approve ? .approve(comment: typed.flatMap { $0.allSatisfy(\.isWhitespace) ? nil : $0 }) : .deny(reason: typed)
        do {
            _ = try await decisions.decide(id, by: session.reviewer, verdict)
        } catch let problem as ApprovalRoutes.Problem {
            let refusal = ReviewerPageProblem(problem.status, Self.sentence(problem.message), code: problem.code)
            if problem.code == "not_found" { throw refusal }
            return try await approvalResponse(
                id, session: session, status: problem.status, notice: nil, problem: refusal, kept: typed.map { [field: $0] } ?? [:])
        } catch let error as ApprovalBookError {
            throw ReviewerPageProblem(.serviceUnavailable, "\(error); try again.", code: "unavailable")
        }
        return Self.redirect("/ui/approvals/\(id.lowercasedString)?done=\(approve ? "approved" : "denied")")
    }

    /// A message of the API as a sentence: with a full stop.
    static func sentence(_ message: String) -> String {
        message.hasSuffix(".") ? message : message + "."
    }

    // MARK: - History

    /// One line of a request's history.
    struct HistoryItem: Sendable {
        var at: Date
        /// `requested`, `granted`, `denied`, `expired`, `consumed`, `completed`.
        var kind: String
        var html: String
    }

    /// The request's events and the outcome of the call that used it, from the log, in time order.
    func history(of approval: Approval) async throws -> [HistoryItem] {
        var names = [ApprovalEvent.stream(approval.id), ToolCallRecorder.stream(approval.request.callID)]
        if let consumption = approval.consumption, consumption.callID != approval.request.callID {
            names.append(ToolCallRecorder.stream(consumption.callID))
        }
        let streams = names
        let events = try await store.client.withConnection { connection in try EventStore.events(ofStreams: streams, on: connection) }
        var items: [HistoryItem] = []
        for event in events {
            if let decoded = try? ApprovalEvent.decode(type: event.type, data: event.data) {
                switch decoded {
                case .requested(let requested):
                    items.append(
                        HistoryItem(
                            at: requested.requestedAt, kind: "requested",
                            html: "requested by agent \(HTML.text(requested.agent)) (call <code>\(requested.callID.lowercasedString)</code>), "
                                + "held by rule <code>\(HTML.text(requested.rule))</code>"))
                case .granted(let granted):
                    items.append(
                        HistoryItem(
                            at: granted.grantedAt, kind: "granted",
                            html: "approved by \(HTML.text(granted.reviewer))" + (granted.comment.map { ": “\(HTML.text($0))”" } ?? "")))
                case .denied(let denied):
                    items.append(
                        HistoryItem(
                            at: denied.deniedAt, kind: "denied", html: "denied by \(HTML.text(denied.reviewer)): “\(HTML.text(denied.reason))”"))
                case .expired(let expired):
                    items.append(HistoryItem(at: expired.expiredAt, kind: "expired", html: "expired: nobody decided in time"))
                case .consumed(let consumed):
                    items.append(
                        HistoryItem(
                            at: consumed.consumedAt, kind: "consumed",
                            html: "used: call <code>\(consumed.callID.lowercasedString)</code> was released to the server"))
                }
            } else if event.type == ToolCallCompleted.type, let completed = try? EventCoding.decode(ToolCallCompleted.self, from: event.data) {
                var text = "call <code>\(completed.callID.lowercasedString)</code> ended: \(HTML.escape(completed.outcome))"
                if let code = completed.errorCode { text += " (error \(code))" }
                if let error = completed.error { text += " (\(HTML.text(error)))" }
                text += " after \(Int(completed.durationMillis.rounded())) ms"
                items.append(HistoryItem(at: completed.completedAt, kind: "completed", html: text))
            }
        }
        return items.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
    }
}
