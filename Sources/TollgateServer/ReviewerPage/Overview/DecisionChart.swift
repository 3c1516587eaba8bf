import Foundation

/// The overview's chart of decisions per minute, drawn by the server as inline SVG: one stacked bar per minute, one
/// colour and one fill pattern per outcome, axis labels, a legend in words with each outcome's total, `role="img"` with
/// an `aria-label` that sums the hour up, and the same numbers as a visually hidden table for screen readers. Pure: no
/// clock, no I/O; the minutes and counts are arguments.
///
/// ```swift
/// let chart = DecisionChart(minutes: starts, counts: [starts[59]: [.allowed: 12, .denied: 1]])
/// let html = chart.html()   // <figure>: the <svg id="decisions-chart">, the legend and the hidden table
/// ```
struct DecisionChart: Sendable {
    /// The minutes drawn, oldest first: each minute's start in seconds since the Unix epoch (UTC).
    let minutes: [Int64]
    /// Calls by minute start and outcome; minutes not in `minutes` are ignored.
    let counts: [Int64: [DecisionOutcome: Int64]]
    /// Said above the chart and in the table's caption.
    let caption: String

    init(minutes: [Int64], counts: [Int64: [DecisionOutcome: Int64]], caption: String = "Decisions per minute, last hour (UTC)") {
        self.minutes = minutes
        self.counts = counts
        self.caption = caption
    }

    /// The `minutes` minutes that end with the one holding `now` (seconds since the epoch), oldest first.
    static func lastMinutes(_ count: Int, endingAt now: Double) -> [Int64] {
        let current = Int64((now / 60).rounded(.down)) * 60
        return (0..<Int64(max(0, count))).reversed().map { current - $0 * 60 }
    }

    // MARK: - Geometry

    static let width = 720
    static let height = 240
    static let left = 52
    static let right = 8
    static let top = 12
    static let bottom = 40
    static var plotWidth: Int { width - left - right }
    static var plotHeight: Int { height - top - bottom }

    // MARK: - Numbers

    func calls(_ minute: Int64, _ outcome: DecisionOutcome) -> Int64 { max(0, counts[minute]?[outcome] ?? 0) }

    func total(_ minute: Int64) -> Int64 { DecisionOutcome.allCases.reduce(0) { $0 + calls(minute, $1) } }

    /// Each outcome's calls over the minutes drawn.
    var totals: [DecisionOutcome: Int64] {
        var totals: [DecisionOutcome: Int64] = [:]
        for outcome in DecisionOutcome.allCases { totals[outcome] = minutes.reduce(0) { $0 + calls($1, outcome) } }
        return totals
    }

    var grandTotal: Int64 { totals.values.reduce(0, +) }

    /// The top of the y axis: 1, 2 or 5 times a power of ten, at least the busiest minute (1 for an empty chart).
    static func axisMaximum(_ busiest: Int64) -> Int64 {
        guard busiest > 1 else { return 1 }
        var power: Int64 = 1
        while true {
            for step: Int64 in [1, 2, 5] where step * power >= busiest { return step * power }
            guard power <= Int64.max / 100 else { return busiest }
            power *= 10
        }
    }

    /// The summary a screen reader says for the chart.
    var summary: String {
        let totals = totals
        var text = "\(caption): \(Self.number(grandTotal)) decision\(grandTotal == 1 ? "" : "s") in \(minutes.count) minutes"
        if grandTotal == 0 { return text + "." }
        text += ": " + DecisionOutcome.allCases.map { "\(Self.number(totals[$0] ?? 0)) \($0.rawValue)" }.joined(separator: ", ")
        if let busiest = minutes.max(by: { total($0) < total($1) || (total($0) == total($1) && $0 > $1) }) {
            text += "; the busiest minute \(Self.clock(busiest)) UTC with \(Self.number(total(busiest)))"
        }
        return text + "."
    }

    // MARK: - Rendering

    /// The figure: caption, chart, legend and the visually hidden table.
    func html() -> String {
        """
        <figure class="chart"><figcaption>\(HTML.escape(caption))</figcaption><div class="chart-scroll">\(svg())</div>\(legend())\(table())</figure>
        """
    }

    /// The chart itself: `<svg id="decisions-chart" role="img" aria-label="...">`.
    func svg() -> String {
        let width = Self.width
        let height = Self.height
        let left = Self.left
        let top = Self.top
        let plotWidth = Self.plotWidth
        let plotHeight = Self.plotHeight
        let busiest = minutes.map(total).max() ?? 0
        let maximum = Self.axisMaximum(busiest)
        var out = "<svg id=\"decisions-chart\" role=\"img\" aria-label=\"\(HTML.escape(summary))\" viewBox=\"0 0 \(width) \(height)\" "
        out += "preserveAspectRatio=\"xMidYMid meet\" xmlns=\"http://www.w3.org/2000/svg\" focusable=\"false\">"
        out += "<defs>" + DecisionOutcome.allCases.map(Self.pattern).joined() + "</defs>"
        // The y axis: 0, half and the top, with grid lines.
        for tick in maximum >= 2 ? [0, maximum / 2, maximum] : [0, maximum] {
            let y = top + plotHeight - Int((Double(tick) / Double(maximum) * Double(plotHeight)).rounded())
            out += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + plotWidth)\" y2=\"\(y)\" stroke=\"#bbbbbb\" stroke-width=\"1\"/>"
            out += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\" font-size=\"12\" fill=\"#222222\">\(Self.number(tick))</text>"
        }
        out += "<text x=\"12\" y=\"\(top + plotHeight / 2)\" text-anchor=\"middle\" font-size=\"12\" fill=\"#222222\" "
        out += "transform=\"rotate(-90 12 \(top + plotHeight / 2))\">calls a minute</text>"
        // One stacked bar per minute.
        let slot = minutes.isEmpty ? Double(plotWidth) : Double(plotWidth) / Double(minutes.count)
        let barWidth = max(1, Int((slot * 0.8).rounded(.down)))
        for (index, minute) in minutes.enumerated() {
            let x = left + Int((Double(index) * slot + (slot - Double(barWidth)) / 2).rounded())
            var base = 0.0
            // Pixels already stacked: each segment starts on the one below, at least a pixel high, so a single call in
            // a busy hour still shows.
            var stacked = 0
            for outcome in DecisionOutcome.allCases {
                let value = calls(minute, outcome)
                guard value > 0 else { continue }
                base += Double(value)
                let reach = Int((base / Double(maximum) * Double(plotHeight)).rounded())
                let barHeight = max(1, reach - stacked)
                let y = top + plotHeight - stacked - barHeight
                stacked += barHeight
                out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(barWidth)\" height=\"\(barHeight)\" fill=\"url(#tg-\(outcome.rawValue))\">"
                out += "<title>\(Self.clock(minute)) UTC: \(Self.number(value)) \(outcome.rawValue)</title></rect>"
            }
        }
        // The x axis: a label every ten minutes of the clock.
        let axisY = top + plotHeight
        out += "<line x1=\"\(left)\" y1=\"\(axisY)\" x2=\"\(left + plotWidth)\" y2=\"\(axisY)\" stroke=\"#222222\" stroke-width=\"1\"/>"
        for (index, minute) in minutes.enumerated() where (minute / 60) % 10 == 0 {
            let x = left + Int((Double(index) * slot + slot / 2).rounded())
            out += "<line x1=\"\(x)\" y1=\"\(axisY)\" x2=\"\(x)\" y2=\"\(axisY + 4)\" stroke=\"#222222\" stroke-width=\"1\"/>"
            out += "<text x=\"\(x)\" y=\"\(axisY + 18)\" text-anchor=\"middle\" font-size=\"12\" fill=\"#222222\">\(Self.clock(minute))</text>"
        }
        out += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 4)\" text-anchor=\"middle\" font-size=\"12\" fill=\"#222222\">minute (UTC)</text>"
        if busiest == 0 {
            out += "<text x=\"\(left + plotWidth / 2)\" y=\"\(top + plotHeight / 2)\" text-anchor=\"middle\" font-size=\"14\" fill=\"#222222\">"
            out += "No decisions in this hour</text>"
        }
        return out + "</svg>"
    }

    /// The legend, in words: each outcome's swatch (its colour and pattern), name, total and meaning.
    func legend() -> String {
        let totals = totals
        var out = "<ul class=\"chart-legend\" id=\"decisions-legend\">"
        for outcome in DecisionOutcome.allCases {
            out +=
                "<li data-outcome=\"\(outcome.rawValue)\"><svg class=\"swatch\" width=\"16\" height=\"16\" viewBox=\"0 0 16 16\" aria-hidden=\"true\" "
            out += "focusable=\"false\"><rect width=\"16\" height=\"16\" fill=\"url(#tg-\(outcome.rawValue))\" stroke=\"#222222\"/></svg> "
            out += "<strong>\(outcome.rawValue)</strong> \(Self.number(totals[outcome] ?? 0))"
            out += " <span class=\"meaning\">(\(HTML.escape(outcome.meaning)))</span></li>"
        }
        return out + "</ul>"
    }

    /// The numbers for screen readers: one row per minute with a decision (the others are said to be left out), in a
    /// visually hidden box (a table itself cannot be made 1 px wide, and would widen the page on a phone).
    func table() -> String {
        var out =
            "<div class=\"visually-hidden\"><table id=\"decisions-table\"><caption>\(HTML.escape(caption)); minutes with no decision left out</caption>"
        out += "<thead><tr><th scope=\"col\">minute (UTC)</th>"
        out += DecisionOutcome.allCases.map { "<th scope=\"col\">\($0.rawValue)</th>" }.joined()
        out += "<th scope=\"col\">total</th></tr></thead><tbody>"
        for minute in minutes where total(minute) > 0 {
            out += "<tr><th scope=\"row\">\(Self.clock(minute))</th>"
            out += DecisionOutcome.allCases.map { "<td>\(Self.number(calls(minute, $0)))</td>" }.joined()
            out += "<td>\(Self.number(total(minute)))</td></tr>"
        }
        let totals = totals
        out += "</tbody><tfoot><tr><th scope=\"row\">all</th>"
        out += DecisionOutcome.allCases.map { "<td>\(Self.number(totals[$0] ?? 0))</td>" }.joined()
        return out + "<td>\(Self.number(grandTotal))</td></tr></tfoot></table></div>"
    }

    /// A fill for `outcome`: its colour with a white texture of its own (none for allowed), so the outcomes differ in
    /// more than colour.
    static func pattern(_ outcome: DecisionOutcome) -> String {
        let texture: String
        switch outcome {
        case .allowed: texture = ""
        case .denied: texture = "<path d=\"M0 8 L8 0 M-2 2 L2 -2 M6 10 L10 6\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>"
        case .limited: texture = "<circle cx=\"4\" cy=\"4\" r=\"1.6\" fill=\"#ffffff\"/>"
        case .held: texture = "<path d=\"M0 2 H8 M0 6 H8\" stroke=\"#ffffff\" stroke-width=\"1.2\"/>"
        case .hidden: texture = "<path d=\"M0 0 L8 8 M8 0 L0 8\" stroke=\"#ffffff\" stroke-width=\"1.2\"/>"
        case .other: texture = "<path d=\"M2 0 V8 M6 0 V8\" stroke=\"#ffffff\" stroke-width=\"1.2\"/>"
        }
        return "<pattern id=\"tg-\(outcome.rawValue)\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\">"
            + "<rect width=\"8\" height=\"8\" fill=\"\(outcome.colour)\"/>\(texture)</pattern>"
    }

    // MARK: - Text

    /// `HH:MM` of a minute's start, UTC.
    static func clock(_ minute: Int64) -> String {
        let ofDay = ((minute % 86_400) + 86_400) % 86_400
        let hours = ofDay / 3600
        let minutes = (ofDay % 3600) / 60
        return (hours < 10 ? "0" : "") + "\(hours):" + (minutes < 10 ? "0" : "") + "\(minutes)"
    }

    /// A count with thousands separated by commas (no locale: the same on every machine).
    static func number(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return (value < 0 ? "-" : "") + out
    }
}
