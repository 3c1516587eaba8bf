import Foundation
import TollgateCore
import TollgatePostgres

/// The reviewer page's history (`GET /ui/history`): decided requests (approved, denied, expired), newest first by
/// request time, a page at a time with keyset paging: `before=<cursor>` for older requests, `after=<cursor>` for newer
/// ones, each cursor the request time and id of a page's last or first row (`ApprovalCursor`'s token), so a page costs
/// the same however deep it is. Filters by server, agent and tool as the pending page.
///
/// ```swift
/// let query = try History.Query(parameters)           // refuses bad input with words
/// let page = try await History.load(query, store: ApprovalStore(client: client))
/// let main = page.html()
/// ```
struct History: Sendable {
    var query: Query
    var items: [Approval]
    /// The cursor of the next (older) page, when there is one.
    var older: ApprovalCursor?
    /// The cursor of the previous (newer) page, when there is one.
    var newer: ApprovalCursor?

    /// Requests on a page.
    static let pageSize = 25
    /// Characters of a filter value accepted at most (as the pending page's).
    static let maxFilterCharacters = 200

    /// A page asked for: its filters and where it starts.
    struct Query: Sendable, Hashable {
        var server: String?
        var agent: String?
        var tool: String?
        var before: ApprovalCursor?
        var after: ApprovalCursor?

        init(server: String? = nil, agent: String? = nil, tool: String? = nil, before: ApprovalCursor? = nil, after: ApprovalCursor? = nil) {
            self.server = server
            self.agent = agent
            self.tool = tool
            self.before = before
            self.after = after
        }

        /// Why a query string is refused.
        enum Refusal: Error, Equatable, CustomStringConvertible {
            case unknownParameter(String)
            case repeated(String)
            case tooLong(String)
            case badCursor(String)
            case bothDirections

            var description: String {
                switch self {
                case .unknownParameter(let name):
                    "The history page takes server, agent, tool, before and after; \"\(name.prefix(40))\" is not one of them."
                case .repeated(let name): "The parameter \(name) is given more than once."
                case .tooLong(let name): "The \(name) parameter must have at most \(History.maxFilterCharacters) characters and no NUL."
                case .badCursor(let name): "The \(name) cursor is not one this page made; start again from the first page."
                case .bothDirections: "A page is either before or after a cursor, not both."
                }
            }
        }

        /// The query of `parameters` (decoded name and value pairs of the URL's query string); an empty value is no
        /// filter. `page=1` is accepted for the first page.
        init(parameters: [(String, String)]) throws(Refusal) {
            var seen: Set<String> = []
            for (name, value) in parameters {
                guard ["server", "agent", "tool", "before", "after", "page"].contains(name) else { throw .unknownParameter(name) }
                guard seen.insert(name).inserted else { throw .repeated(name) }
                guard value.count <= History.maxFilterCharacters, !value.unicodeScalars.contains("\0") else { throw .tooLong(name) }
                let given = value.isEmpty ? nil : value
                switch name {
                case "server": server = given
                case "agent": agent = given
                case "tool": tool = given
                case "before":
                    guard let given else { break }
                    guard let cursor = ApprovalCursor(token: given) else { throw .badCursor(name) }
                    before = cursor
                case "after":
                    guard let given else { break }
                    guard let cursor = ApprovalCursor(token: given) else { throw .badCursor(name) }
                    after = cursor
                default:
                    // `page`: only the first page has a number (the others are reached by their links).
                    guard given == nil || given == "1" else { throw .badCursor(name) }
                }
            }
            if before != nil, after != nil { throw .bothDirections }
        }

        /// The query string of this page's filters with `extra` (already encoded) added.
        func link(_ extra: String?) -> String {
            var parts: [String] = []
            for (name, value) in [("server", server), ("agent", agent), ("tool", tool)] {
                if let value { parts.append("\(name)=\(HTML.queryValue(value))") }
            }
            if let extra { parts.append(extra) }
            return "/ui/history" + (parts.isEmpty ? "" : "?" + parts.joined(separator: "&"))
        }
    }

    static func load(_ query: Query, store: ApprovalStore, pageSize: Int = History.pageSize) async throws -> History {
        let cursor: ApprovalStore.HistoryCursor? =
            if let before = query.before {
                .older(requestedAtMicros: before.requestedAtMicros, approvalID: before.approvalID)
            } else if let after = query.after {
                .newer(requestedAtMicros: after.requestedAtMicros, approvalID: after.approvalID)
            } else {
                nil
            }
        // One more than a page, to know whether there is a page beyond.
        var rows = try await store.decidedPage(server: query.server, agent: query.agent, tool: query.tool, cursor: cursor, limit: pageSize + 1)
        let beyond = rows.count > pageSize
        if beyond {
            // Newest first; the extra row is the oldest when paging back, the newest when paging forward.
            if query.after != nil { rows.removeFirst() } else { rows.removeLast() }
        }
        var items: [Approval] = []
        var micros: [Int64] = []
        for row in rows {
            items.append(try ApprovalBook.approval(row.state))
            micros.append(row.requestedAtMicros)
        }
        var page = History(query: query, items: items, older: nil, newer: nil)
        if let last = items.last, let lastMicros = micros.last, query.after != nil || beyond {
            page.older = ApprovalCursor(requestedAtMicros: lastMicros, approvalID: last.id)
        }
        if let first = items.first, let firstMicros = micros.first, query.before != nil || (query.after != nil && beyond) {
            page.newer = ApprovalCursor(requestedAtMicros: firstMicros, approvalID: first.id)
        }
        return page
    }

    // MARK: - Rendering

    func html() -> String {
        var out = "<h1>History</h1>"
        out += "<form id=\"history-filters\" method=\"get\" action=\"/ui/history\" class=\"filters\">"
        for (name, value) in [("server", query.server), ("agent", query.agent), ("tool", query.tool)] {
            out += "<label for=\"history-\(name)\">\(name.capitalized)</label>"
            out += "<input id=\"history-\(name)\" name=\"\(name)\" type=\"text\" maxlength=\"\(Self.maxFilterCharacters)\" "
            out += "value=\"\(HTML.escape(value ?? ""))\">"
        }
        out += "<button type=\"submit\">Filter</button></form>"
        out += "<table id=\"history\" class=\"stack-on-phone\"><caption class=\"visually-hidden\">Decided requests, newest first</caption><thead><tr>"
        for column in ["requested (UTC)", "outcome", "tool", "server", "agent", "decided by", "reason or comment", "decided (UTC)"] {
            out += "<th scope=\"col\">\(column)</th>"
        }
        out += "</tr></thead><tbody>"
        for approval in items { out += row(approval) }
        out += "</tbody></table>"
        if items.isEmpty {
            let text =
                query.before != nil || query.after != nil
                ? "No decided requests on this page."
                : query.server == nil && query.agent == nil && query.tool == nil
                    ? "No decided requests yet." : "No decided requests match these filters."
            out += "<p id=\"history-empty\">\(text)</p>"
        }
        if older != nil || newer != nil {
            out += "<nav aria-label=\"Pages\" class=\"pages\">"
            if let newer { out += "<a rel=\"prev\" href=\"\(HTML.escape(query.link("after=" + newer.token)))\">Newer</a>" }
            if let older { out += "<a rel=\"next\" href=\"\(HTML.escape(query.link("before=" + older.token)))\">Older</a>" }
            out += "</nav>"
        }
        return out
    }

    func row(_ approval: Approval) -> String {
        let id = approval.id.lowercasedString
        let request = approval.request
        let outcome = approval.outcome
        var status = approval.status.rawValue
        if approval.consumption != nil { status += ", used" }
        var said: [String] = []
        if let denial = approval.denial { said.append(denial.reason) }
        for grant in approval.grants { if let comment = grant.comment, !comment.isEmpty { said.append("\(grant.reviewer): \(comment)") } }
        if approval.status == .expired { said.append(outcome.reason ?? "nobody decided in time") }
        var out = "<tr data-approval-id=\"\(id)\" data-status=\"\(approval.status.rawValue)\">"
        out += "<td data-label=\"requested (UTC)\"><a href=\"/ui/approvals/\(id)\">\(Self.time(request.requestedAt))</a></td>"
        out += "<td data-label=\"outcome\" class=\"status-\(approval.status.rawValue)\">\(HTML.escape(status))</td>"
        out += "<td data-label=\"tool\"><code>\(Overview.shown(request.tool))</code></td>"
        out += "<td data-label=\"server\">\(Overview.shown(request.server))</td><td data-label=\"agent\">\(Overview.shown(request.agent))</td>"
        out += "<td data-label=\"decided by\">\(outcome.by.map(Overview.shown).joined(separator: ", "))</td>"
        out += "<td data-label=\"reason or comment\">\(said.map { Overview.shown(String($0.prefix(500))) }.joined(separator: "<br>"))</td>"
        out += "<td data-label=\"decided (UTC)\">\(approval.decidedAt.map(Self.time) ?? "")</td></tr>"
        return out
    }

    /// `2026-12-07 23:59:01`, UTC.
    static func time(_ date: Date) -> String {
        let stamp = EventCoding.timestamp(date)
        return String(stamp.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }
}
