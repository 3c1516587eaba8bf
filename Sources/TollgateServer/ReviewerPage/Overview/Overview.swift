import Foundation
import TollgateCore
import TollgatePostgres

/// What the reviewer page's overview shows (`GET /ui/overview`): decisions per minute over the last hour by outcome,
/// the busiest tools of that hour, the relay sessions open in this process and how far the projections are behind the
/// log. Read with a few bounded queries (`OverviewStore`); rendered without I/O by `html()`.
///
/// ```swift
/// let overview = try await Overview.load(store: OverviewStore(client: client), sessions: sessions, projections: names)
/// let main = overview.html()
/// ```
struct Overview: Sendable {
    var chart: DecisionChart
    var busiest: [BusyTool]
    var sessions: OpenSessions
    var lag: [OverviewStore.ProjectionLag]

    /// Minutes drawn.
    static let minutes = 60
    /// Tools listed.
    static let busiestCount = 10
    /// Events past a checkpoint counted at most.
    static let lagCap = 10_000
    /// Characters of a tool or server name shown at most.
    static let nameCharacters = 200

    /// One of the busiest tools: its calls of the hour by outcome. `server` and `tool` empty: the tools counted together
    /// once a minute had more than `DecisionsProjection.maxNamedToolsPerMinute` distinct ones.
    struct BusyTool: Sendable, Hashable {
        var server: String
        var tool: String
        var calls: [DecisionOutcome: Int64]
        var total: Int64 { calls.values.reduce(0, +) }
    }

    /// The relay sessions open in this gateway process, by server.
    struct OpenSessions: Sendable, Hashable {
        var byServer: [String: Int]
        var total: Int { byServer.values.reduce(0, +) }
    }

    static func load(store: OverviewStore, sessions: OpenSessions, projections: [String]) async throws -> Overview {
        let (now, counts) = try await store.decisionsPerMinute(minutes: minutes)
        var byMinute: [Int64: [DecisionOutcome: Int64]] = [:]
        for count in counts { byMinute[count.minute, default: [:]][DecisionOutcome(decision: count.decision), default: 0] += count.calls }
        let chart = DecisionChart(minutes: DecisionChart.lastMinutes(minutes, endingAt: now), counts: byMinute)
        var busiest: [BusyTool] = []
        for row in try await store.busiestTools(minutes: minutes, limit: busiestCount) {
            if busiest.last.map({ $0.server != row.server || $0.tool != row.tool }) ?? true {
                busiest.append(BusyTool(server: row.server, tool: row.tool, calls: [:]))
            }
            busiest[busiest.count - 1].calls[DecisionOutcome(decision: row.decision), default: 0] += row.calls
        }
        let lag = try await store.projectionLag(names: projections, cap: lagCap)
        return Overview(chart: chart, busiest: busiest, sessions: sessions, lag: lag)
    }

    // MARK: - Rendering

    /// The page's main content.
    func html() -> String {
        var out = "<h1>Overview</h1>"
        out += "<section aria-labelledby=\"decisions-heading\"><h2 id=\"decisions-heading\">Decisions</h2>\(chart.html())</section>"
        out += "<section aria-labelledby=\"busiest-heading\"><h2 id=\"busiest-heading\">Busiest tools</h2>\(busiestTable())</section>"
        out += "<section aria-labelledby=\"state-heading\"><h2 id=\"state-heading\">The gateway</h2>"
        out += "<p id=\"open-sessions\">\(sessionsText())</p><p id=\"projector-lag\">\(lagText())</p></section>"
        return out
    }

    func busiestTable() -> String {
        var out =
            "<table id=\"busiest-tools\" class=\"stack-on-phone\"><caption class=\"visually-hidden\">The \(Self.busiestCount) tools with the most calls in the last hour, "
        out += "by outcome</caption><thead><tr><th scope=\"col\">tool</th><th scope=\"col\">server</th><th scope=\"col\">calls</th>"
        out += DecisionOutcome.allCases.map { "<th scope=\"col\">\($0.rawValue)</th>" }.joined()
        out += "</tr></thead><tbody>"
        if busiest.isEmpty {
            out += "<tr id=\"busiest-tools-empty\"><td colspan=\"\(3 + DecisionOutcome.allCases.count)\">No calls in the last hour.</td></tr>"
        }
        for tool in busiest {
            if tool.server.isEmpty {
                out += "<tr data-other-tools=\"true\"><td data-label=\"tool\"><em>other tools</em> (past "
                out += "\(DecisionsProjection.maxNamedToolsPerMinute) distinct tools in a minute)</td><td data-label=\"server\"></td>"
            } else {
                out += "<tr data-server=\"\(Self.attribute(tool.server))\" data-tool=\"\(Self.attribute(tool.tool))\">"
                out += "<td data-label=\"tool\"><code>\(Self.shown(tool.tool))</code></td><td data-label=\"server\">\(Self.shown(tool.server))</td>"
            }
            out += "<td data-label=\"calls\">\(DecisionChart.number(tool.total))</td>"
            out += DecisionOutcome.allCases.map { "<td data-label=\"\($0.rawValue)\">\(DecisionChart.number(tool.calls[$0] ?? 0))</td>" }.joined()
            out += "</tr>"
        }
        return out + "</tbody></table>"
    }

    func sessionsText() -> String {
        let total = sessions.total
        var text = "\(DecisionChart.number(Int64(total))) relay session\(total == 1 ? "" : "s") open in this gateway process"
        let servers = sessions.byServer.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        if !servers.isEmpty {
            text += " (" + servers.map { "\(DecisionChart.number(Int64($0.value))) on \(Self.shown($0.key))" }.joined(separator: ", ") + ")"
        }
        return text
            + ". Stateless requests (protocol 2026-07-28) open none; other gateway processes on this database and "
            + "<code>tollgate stdio</code> processes count their own."
    }

    func lagText() -> String {
        guard let slowest = lag.max(by: { ($0.behind, $0.oldestSeconds) < ($1.behind, $1.oldestSeconds) }) else {
            return "No projections run here."
        }
        if slowest.behind == 0 {
            return "The projector is caught up with the log (\(lag.count) projections)."
        }
        let count = (slowest.capped ? "more than " : "") + DecisionChart.number(slowest.behind)
        let age = slowest.oldestSeconds < 10 ? String(format: "%.1f", slowest.oldestSeconds) : DecisionChart.number(Int64(slowest.oldestSeconds))
        return "The projector is behind the log: \(Self.shown(slowest.name)), the furthest behind, has \(count) event"
            + "\(slowest.behind == 1 && !slowest.capped ? "" : "s") to apply, the oldest recorded \(age) s ago. "
            + "The counts above are as far as it has got."
    }

    /// A name as shown: cut to `nameCharacters`, escaped for HTML, invisible and control characters made visible.
    static func shown(_ name: String) -> String {
        HTML.text(name.count > nameCharacters ? String(name.prefix(nameCharacters)) + "…" : name)
    }

    /// A name for a quoted attribute value: cut as shown, invisible characters as escapes, escaped for HTML.
    static func attribute(_ name: String) -> String {
        HTML.escape((name.count > nameCharacters ? String(name.prefix(nameCharacters)) + "…" : name).escapingInvisibles())
    }
}
