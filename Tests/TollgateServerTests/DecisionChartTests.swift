import Foundation
import Testing

@testable import TollgateServer

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The overview's chart, drawn without a database: what it draws for an empty hour, one spike and every outcome, and
/// that no text reaches the page unescaped. Also the overview's and the history's other pure parts.
@Suite("The overview's chart and pages, pure")
struct DecisionChartTests {
    /// 60 minutes ending at 12:34 UTC on 2026-12-07.
    static let minutes = DecisionChart.lastMinutes(60, endingAt: 1_796_646_840 + 17)

    /// The bars: each `<rect>` drawn for a count (the ones with a `<title>`), as (x, y, height, outcome, title).
    static func bars(_ svg: String) -> [(x: Int, y: Int, height: Int, outcome: String, title: String)] {
        let pattern = /<rect x="(\d+)" y="(\d+)" width="\d+" height="(\d+)" fill="url\(#tg-(\w+)\)"><title>([^<]*)<\/title><\/rect>/
        return svg.matches(of: pattern).map { match in
            (Int(match.1)!, Int(match.2)!, Int(match.3)!, String(match.4), String(match.5))
        }
    }

    static func ariaLabel(_ svg: String) -> String? {
        svg.firstMatch(of: /aria-label="([^"]*)"/).map { String($0.1) }
    }

    /// A busiest-tools row's counts as rendered: calls, then each outcome.
    static func cells(_ counts: [Int]) -> String {
        zip(["calls"] + DecisionOutcome.allCases.map(\.rawValue), counts).map { "<td data-label=\"\($0)\">\($1)</td>" }.joined()
    }

    static func tableRows(_ html: String) -> Int {
        guard let body = html.firstMatch(of: /<tbody>(.*)<\/tbody>/) else { return -1 }
        return body.1.matches(of: /<tr>/).count
    }

    @Test func theMinutesEndWithTheCurrentOne() {
        #expect(Self.minutes.count == 60)
        #expect(Self.minutes.last == 1_796_646_840)
        let first: Int64 = 1_796_646_840 - 59 * 60
        #expect(Self.minutes.first == first)
        #expect(DecisionChart.clock(Self.minutes.last!) == "12:34")
    }

    @Test func anEmptyHourSaysSoAndDrawsNoBar() {
        let chart = DecisionChart(minutes: Self.minutes, counts: [:])
        let svg = chart.svg()
        #expect(svg.hasPrefix("<svg id=\"decisions-chart\" role=\"img\" aria-label=\""))
        #expect(Self.bars(svg).isEmpty)
        #expect(svg.contains("No decisions in this hour"))
        #expect(Self.ariaLabel(svg) == "Decisions per minute, last hour (UTC): 0 decisions in 60 minutes.")
        #expect(Self.tableRows(chart.table()) == 0)
        // The axis still has its labels: 0 and 1 calls, and a clock label every ten minutes.
        #expect(svg.contains(">0</text>") && svg.contains(">1</text>"))
        #expect(svg.matches(of: /text-anchor="middle" font-size="12" fill="#222222">\d\d:\d0<\/text>/).count == 6)
        #expect(svg.contains("minute (UTC)") && svg.contains("calls a minute"))
    }

    @Test func oneSpikeIsOneBarScaledToTheAxis() throws {
        let spike = Self.minutes[41]
        let chart = DecisionChart(minutes: Self.minutes, counts: [spike: [.allowed: 37]])
        let svg = chart.svg()
        let bars = Self.bars(svg)
        try #require(bars.count == 1)
        // The axis tops at 50 (1, 2 or 5 times a power of ten); 37 of 50 of the plot's height, standing on the axis.
        #expect(DecisionChart.axisMaximum(37) == 50)
        #expect(svg.contains(">50</text>") && svg.contains(">25</text>"))
        let expected = Int((37.0 / 50.0 * Double(DecisionChart.plotHeight)).rounded())
        #expect(bars[0].height == expected)
        #expect(bars[0].y + bars[0].height == DecisionChart.top + DecisionChart.plotHeight)
        #expect(bars[0].outcome == "allowed")
        #expect(bars[0].title == "\(DecisionChart.clock(spike)) UTC: 37 allowed")
        // Its slot is the 42nd of 60.
        let slot = Double(DecisionChart.plotWidth) / 60
        #expect(Double(bars[0].x) > Double(DecisionChart.left) + 41 * slot - 1 && Double(bars[0].x) < Double(DecisionChart.left) + 42 * slot)
        #expect(!svg.contains("No decisions in this hour"))
        let label = try #require(Self.ariaLabel(svg))
        #expect(label.contains("37 decisions in 60 minutes: 37 allowed, 0 denied, 0 limited, 0 held, 0 hidden, 0 other"))
        #expect(label.contains("the busiest minute \(DecisionChart.clock(spike)) UTC with 37"))
        #expect(Self.tableRows(chart.table()) == 1)
        #expect(chart.table().contains("<tr><th scope=\"row\">\(DecisionChart.clock(spike))</th><td>37</td><td>0</td>"))
    }

    @Test func everyOutcomeIsStackedInItsOrderWithItsOwnFill() throws {
        let minute = Self.minutes[59]
        let counts: [DecisionOutcome: Int64] = [.allowed: 500, .denied: 200, .limited: 100, .held: 40, .hidden: 3, .other: 1]
        let chart = DecisionChart(minutes: Self.minutes, counts: [minute: counts, Self.minutes[0]: [.denied: 1_000]])
        let svg = chart.svg()
        let bars = Self.bars(svg).filter { $0.title.hasPrefix(DecisionChart.clock(minute)) }
        #expect(bars.map(\.outcome) == DecisionOutcome.allCases.map(\.rawValue))
        // Stacked bottom up, each segment on the one below, none lost (a single call still gets a pixel).
        for (below, above) in zip(bars, bars.dropFirst()) { #expect(above.y + above.height == below.y) }
        #expect(bars.allSatisfy { $0.height >= 1 })
        #expect(bars[0].y + bars[0].height == DecisionChart.top + DecisionChart.plotHeight)
        // Each outcome has a pattern of its own, and the legend says each one's name and total in words.
        let patterns = Set(svg.matches(of: /<pattern id="(tg-\w+)"/).map { String($0.1) })
        #expect(patterns == Set(DecisionOutcome.allCases.map { "tg-\($0.rawValue)" }))
        let legend = chart.legend()
        for outcome in DecisionOutcome.allCases {
            let total = (counts[outcome] ?? 0) + (outcome == .denied ? 1_000 : 0)
            #expect(legend.contains("<strong>\(outcome.rawValue)</strong> \(DecisionChart.number(total))"), "\(outcome)")
        }
        let label = try #require(Self.ariaLabel(svg))
        #expect(label.contains("1,844 decisions in 60 minutes: 500 allowed, 1,200 denied, 100 limited, 40 held, 3 hidden, 1 other"))
        #expect(label.contains("the busiest minute \(DecisionChart.clock(Self.minutes[0])) UTC with 1,000"))
        #expect(Self.tableRows(chart.table()) == 2)
        #expect(
            chart.table().contains(
                "<tfoot><tr><th scope=\"row\">all</th><td>500</td><td>1,200</td><td>100</td><td>40</td><td>3</td><td>1</td><td>1,844</td>"))
        #expect(chart.html().contains("class=\"visually-hidden\""))
    }

    /// The chart, its legend and its table parse as XML (the SVG is well formed: every element closed, attributes quoted).
    @Test func theChartIsWellFormed() {
        let minute = Self.minutes[10]
        let chart = DecisionChart(
            minutes: Self.minutes, counts: [minute: [.allowed: 3, .denied: 2, .other: 1]], caption: "a <caption> & \"quotes\"")
        for part in [chart.svg(), chart.legend(), chart.table(), chart.html()] {
            let parser = XMLParser(data: Data(part.utf8))
            #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "") in \(part.prefix(200))")
        }
    }

    @Test func decisionsMapToTheirOutcomes() {
        #expect(DecisionOutcome(decision: "allow") == .allowed)
        #expect(DecisionOutcome(decision: "deny") == .denied)
        #expect(DecisionOutcome(decision: "limited") == .limited)
        #expect(DecisionOutcome(decision: "require_approval") == .held)
        #expect(DecisionOutcome(decision: "hidden") == .hidden)
        #expect(DecisionOutcome(decision: "error") == .other)
        #expect(DecisionOutcome(decision: "refused") == .other)
        #expect(DecisionOutcome(decision: "<b>") == .other)
    }

    @Test func theAxisTopIsARoundNumber() {
        #expect([0, 1, 2, 3, 7, 10, 11, 99, 101, 4_000_000].map(DecisionChart.axisMaximum) == [1, 1, 2, 5, 10, 10, 20, 100, 200, 5_000_000])
        #expect(DecisionChart.number(0) == "0" && DecisionChart.number(999) == "999" && DecisionChart.number(1_234_567) == "1,234,567")
    }

    @Test func noTextReachesThePageUnescaped() {
        let hostile = "<script>alert(\"x\")</script> & 'quoted' \u{202E}"
        let chart = DecisionChart(minutes: Self.minutes, counts: [Self.minutes[3]: [.held: 2]], caption: hostile)
        let html = chart.html()
        #expect(!html.contains("<script>"))
        #expect(!html.contains("\"x\""))
        #expect(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;"))
        // Inside the aria-label too: the attribute is never closed early.
        #expect(Self.ariaLabel(chart.svg())?.hasPrefix("&lt;script&gt;alert(&quot;x&quot;)") == true)
    }

    @Test func hostileToolAndServerNamesAreEscapedAndMadeVisible() {
        let tool = "<img src=x onerror=alert(1)>\"'&\u{202E}evil\u{0007}"
        let long = String(repeating: "t", count: 5_000)
        let overview = Overview(
            chart: DecisionChart(minutes: Self.minutes, counts: [:]),
            busiest: [
                .init(server: "pay\"><script>", tool: tool, calls: [.hidden: 3, .denied: 1]), .init(server: "pay", tool: long, calls: [.allowed: 2]),
                .init(server: "", tool: "", calls: [.hidden: 9]),
            ],
            sessions: .init(byServer: ["pay<b>": 2, "time": 0]), lag: [])
        let html = overview.html()
        #expect(!html.contains("<img") && !html.contains("<script>") && !html.contains("<b>"))
        #expect(
            html.contains(
                "&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;<mark class=\"invisible\">\\u202E</mark>evil<mark class=\"invisible\">\\u0007</mark>"
            ))
        #expect(!html.contains("\u{202E}") && !html.contains("\u{0007}"))
        #expect(html.contains("data-server=\"pay&quot;&gt;&lt;script&gt;\""))
        #expect(html.contains(String(repeating: "t", count: Overview.nameCharacters) + "…"))
        #expect(!html.contains(String(repeating: "t", count: Overview.nameCharacters + 1)))
        #expect(html.contains("<em>other tools</em>"))
        #expect(html.contains(Self.cells([4, 0, 1, 0, 0, 3, 0])))
        #expect(html.contains("<p id=\"open-sessions\">2 relay sessions open in this gateway process (2 on pay&lt;b&gt;)"))
    }

    @Test func theHistoryRefusesBadQueriesWithWords() throws {
        let cursor = ApprovalCursor(requestedAtMicros: 1_796_646_840_000_000, approvalID: UUID()).token
        let refused: [([(String, String)], History.Query.Refusal)] = [
            ([("status", "approved")], .unknownParameter("status")),
            ([("tool", "a"), ("tool", "b")], .repeated("tool")),
            ([("agent", String(repeating: "a", count: 201))], .tooLong("agent")),
            ([("before", "AAAA")], .badCursor("before")),
            ([("after", String(repeating: "Z", count: 150))], .badCursor("after")),
            ([("after", "' OR 1=1 --")], .badCursor("after")),
            ([("page", "2")], .badCursor("page")),
            ([("before", cursor), ("after", cursor)], .bothDirections),
        ]
        for (parameters, refusal) in refused {
            #expect(throws: refusal, "\(parameters)") { try History.Query(parameters: parameters) }
            #expect(!refusal.description.isEmpty)
        }
        let query = try History.Query(parameters: [("server", "pay"), ("tool", ""), ("page", "1"), ("before", cursor)])
        #expect(query.server == "pay" && query.tool == nil && query.before?.token == cursor)
        #expect(query.link("before=x") == "/ui/history?server=pay&before=x")
        let odd = History.Query(server: "a b&c=<d>", agent: "é")
        #expect(odd.link(nil) == "/ui/history?server=a%20b%26c%3D%3Cd%3E&agent=%C3%A9")
    }
}
