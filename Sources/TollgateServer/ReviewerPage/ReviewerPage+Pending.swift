import Foundation
import Hummingbird
import TollgateCore

/// The pending approvals: a filter form, a table of the pending requests, and the rows fragment that
/// `/ui/static/app.js` fetches every 2 s to keep the table current.
extension ReviewerPage {
    /// The most rows the table shows (newest first); the page says when there are more.
    static let pendingShown = 200

    /// The filters of the page's query (`server`, `agent`, `tool`; empty means any). Other query parameters are ignored.
    struct PendingFilters: Sendable {
        var server: String?
        var agent: String?
        var tool: String?

        init(_ request: Request) throws(ReviewerPageProblem) {
            let parameters = request.uri.queryParameters
            func value(_ name: String) throws(ReviewerPageProblem) -> String? {
                guard let text = parameters[Substring(name)].map(String.init), !text.isEmpty else { return nil }
                guard text.count <= 200, !text.unicodeScalars.contains("\0") else {
                    throw ReviewerPageProblem(.badRequest, "The \(name) filter must have at most 200 characters and no NUL.")
                }
                return text
            }
            server = try value("server")
            agent = try value("agent")
            tool = try value("tool")
        }

        /// The filters as a query string (`?server=pay&tool=transfer`), or "".
        var query: String {
            let pairs = [("server", server), ("agent", agent), ("tool", tool)].compactMap { name, value in
                value.map { "\(name)=\(HTML.queryValue($0))" }
            }
            return pairs.isEmpty ? "" : "?" + pairs.joined(separator: "&")
        }
    }

    /// The pending requests matching `filters`, newest first, one more than shown (to tell whether there are more).
    func pending(_ filters: PendingFilters) async throws -> [Approval] {
        var query = ApprovalQuery()
        query.status = .pending
        query.server = filters.server
        query.agent = filters.agent
        query.tool = filters.tool
        query.limit = Self.pendingShown + 1
        return try await book.list(query).items
    }

    func pendingPage(_ request: Request, session: ReviewerSession) async throws -> Response {
        let filters = try PendingFilters(request)
        let approvals = try await pending(filters)
        let now = Date()
        let rows = Self.pendingRows(approvals.prefix(Self.pendingShown), now: now)
        func field(_ name: String, _ label: String, _ value: String?) -> String {
            """
            <div class="field"><label for="filter-\(name)">\(label)</label>\
            <input id="filter-\(name)" name="\(name)" type="text" value="\(HTML.escape(value ?? ""))" maxlength="200" autocomplete="off"></div>
            """
        }
        let empty = approvals.isEmpty
        var body = """
            <h1>Pending approvals</h1>
            <form id="filters" method="get" action="/ui/pending" class="filters">
            \(field("server", "Server", filters.server))
            \(field("agent", "Agent", filters.agent))
            \(field("tool", "Tool", filters.tool))
            <div class="actions"><button type="submit">Filter</button> <a href="/ui/pending">Clear</a></div>
            </form>
            <p id="live" class="hint" aria-live="polite">This list updates itself every 2 seconds.</p>
            <p id="pending-empty"\(empty ? "" : " hidden")>No pending approvals.</p>
            <table id="pending" class="stack-on-phone" data-rows="/ui/pending/rows\(HTML.escape(filters.query))"\(empty ? " hidden" : "")>
            <caption class="visually-hidden">Pending approval requests, newest first</caption>
            <thead><tr><th scope="col">Tool</th><th scope="col">Agent</th><th scope="col">Server</th><th scope="col">Risk</th>\
            <th scope="col">Rule</th><th scope="col">Expires</th><th scope="col">Approvals</th></tr></thead>
            <tbody>
            \(rows)</tbody>
            </table>

            """
        if approvals.count > Self.pendingShown {
            body += "<p class=\"hint\">Showing the \(Self.pendingShown) newest; filter by server, agent or tool to see others.</p>\n"
        }
        return Self.html(.ok, ReviewerPageLayout.page(title: "Pending approvals", session: session, current: .pending, body: body))
    }

    /// The `<tbody>` content alone, for the page's script.
    func pendingRows(_ request: Request, session: ReviewerSession) async throws -> Response {
        let filters = try PendingFilters(request)
        let approvals = try await pending(filters)
        return Self.html(.ok, Self.pendingRows(approvals.prefix(Self.pendingShown), now: Date()))
    }

    /// One `<tr data-approval-id>` per request.
    static func pendingRows(_ approvals: ArraySlice<Approval>, now: Date) -> String {
        var html = ""
        for approval in approvals {
            let request = approval.request
            let id = approval.id.lowercasedString
            html += """
                <tr data-approval-id="\(id)">\
                <td data-label="Tool"><a href="/ui/approvals/\(id)">\(HTML.text(request.tool))</a></td>\
                <td data-label="Agent">\(HTML.text(request.agent))</td>\
                <td data-label="Server">\(HTML.text(request.server))</td>\
                <td data-label="Risk">\(risk(request))</td>\
                <td data-label="Rule"><code>\(HTML.text(request.rule))</code>\(request.reason.map { "<br>" + HTML.text($0) } ?? "")</td>\
                <td data-label="Expires">\(time(request.expiresAt, now: now))</td>\
                <td data-label="Approvals">\(quorum(approval))</td>\
                </tr>

                """
        }
        return html
    }

    /// The tool's risk category and level as the gate classified them when the call was held ("financial, high").
    static func risk(_ request: ApprovalRequested) -> String {
        guard let category = request.category else { return "<span class=\"muted\">not classified</span>" }
        var html = "<span class=\"risk\">\(HTML.text(category))</span>"
        if let level = request.riskLevel {
            html += ", <span class=\"risk-level risk-\(HTML.escape(level.escapingInvisibles()))\">\(HTML.text(level))</span>"
        }
        return html
    }

    /// "1 of 2", and who approved so far.
    static func quorum(_ approval: Approval) -> String {
        var html = "\(approval.grants.count) of \(approval.request.quorum)"
        if !approval.grants.isEmpty {
            html += "<br><span class=\"muted\">by \(approval.grants.map { HTML.text($0.reviewer) }.joined(separator: ", "))</span>"
        }
        return html
    }

    /// A time as `<time datetime>` with how far it is from now in words.
    static func time(_ date: Date, now: Date) -> String {
        "<time datetime=\"\(EventCoding.timestamp(date))\" title=\"\(EventCoding.timestamp(date))\">\(relative(date, now: now))</time>"
    }

    /// "in 12 min", "3 h ago", "in under a minute".
    static func relative(_ date: Date, now: Date) -> String {
        let seconds = date.timeIntervalSince(now)
        let minutes = Int((abs(seconds) / 60).rounded(.down))
        let amount: String
        if minutes < 1 {
            amount = "under a minute"
        } else if minutes < 120 {
            amount = "\(minutes) min"
        } else if minutes < 48 * 60 {
            amount = "\(minutes / 60) h"
        } else {
            amount = "\(minutes / 1440) days"
        }
        return seconds >= 0 ? "in \(amount)" : (minutes < 1 ? "under a minute ago" : "\(amount) ago")
    }
}
