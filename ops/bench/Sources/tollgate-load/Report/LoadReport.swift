import NIOCore

/// The result of one load test, written by ``LoadReport/text`` for a person or ``LoadReport/json`` for a script.
struct LoadReport: Sendable {
    var url: String
    var tool: String
    var mode: LoadConfiguration.Mode
    var duration: TimeAmount
    var warmup: TimeAmount
    var connections: Int
    var connectionCap: Int
    var peakConnections: Int
    var connectFailures: Int
    var sessions: Int
    var sessionsClosed: Int
    var protocolVersion: String
    var statistics: LoadStatistics
    /// Things worth knowing that are not failures of the run: a different protocol version, a refused `DELETE`.
    var notes: [String]
    /// Every measured call in the order answered, when the run kept them (`--samples-file`).
    var samples: [LoadSample] = []

    /// A fixed-rate run keeps its schedule when no call waited for a connection with the pool at its cap, none
    /// timed out unsent, and 99 % were written within 1 ms of their scheduled time.
    static let sendLagTolerance: Int64 = 1_000_000

    /// Calls answered (ok, isError, JSON-RPC or HTTP error) per second of the measured window.
    var callsPerSecond: Double {
        Double(statistics.answered) / (Double(duration.nanoseconds) / 1e9)
    }

    /// `nil` in saturation mode, which has no schedule.
    var scheduleKept: Bool? {
        guard case .fixedRate = mode else { return nil }
        return statistics.waitedAtCap == 0 && statistics.expiredUnsent == 0
            && statistics.sendLag.value(atQuantile: 0.99) <= Self.sendLagTolerance
    }

    /// The latency quantiles reported, with their names.
    static let quantiles: [(name: String, quantile: Double)] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)]
}

extension LoadReport {
    /// One readable block.
    var text: String {
        let statistics = statistics
        var lines: [String] = []
        lines.append("tollgate-load: tools/call \(tool) → \(url)")
        switch mode {
        case .fixedRate(let rate):
            lines.append(
                "  mode          fixed rate \(format(rate, decimals: rate.rounded() == rate ? 0 : 2))/s (open loop), "
                    + "\(duration.shortDescription) measured after \(warmup.shortDescription) warm-up"
            )
        case .saturate:
            lines.append(
                "  mode          saturation, \(connections) calls in flight, \(duration.shortDescription) measured after "
                    + "\(warmup.shortDescription) warm-up"
            )
        }
        var connectionLine = "  connections   \(connections) at start, peak \(peakConnections)"
        if case .fixedRate = mode { connectionLine += " (cap \(connectionCap))" }
        if connectFailures > 0 { connectionLine += ", \(connectFailures) failed to open" }
        lines.append(connectionLine)
        lines.append("  sessions      \(sessions) at protocol \(protocolVersion), \(sessionsClosed) closed with DELETE")
        lines.append(
            "  calls/s       \(format(callsPerSecond, decimals: 1))  (\(statistics.answered) answered of \(statistics.total) measured calls)"
        )
        lines.append(
            "  outcomes      ok \(statistics.ok)  isError \(statistics.toolErrors)  rpc-error \(statistics.rpcErrors)  "
                + "http-error \(statistics.httpErrors)  timeout \(statistics.timeouts)  connection-error \(statistics.connectionErrors)  "
                + "malformed \(statistics.malformed)"
        )
        if !statistics.httpStatuses.isEmpty {
            let statuses = statistics.httpStatuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }
            lines.append("  http statuses \(statuses.joined(separator: "  "))")
        }
        if !statistics.rpcErrorCodes.isEmpty {
            let codes = statistics.rpcErrorCodes.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }
            lines.append("  rpc codes     \(codes.joined(separator: "  "))")
        }
        let latency = statistics.latency
        if latency.count == 0 {
            lines.append("  latency ms    - (no call was answered)")
        } else {
            var latencyLine = "  latency ms   "
            for (name, quantile) in Self.quantiles {
                latencyLine += " \(name) \(milliseconds(latency.value(atQuantile: quantile)))"
            }
            latencyLine += "  max \(milliseconds(latency.maximum))  mean \(format(latency.mean / 1e6, decimals: 3))"
            lines.append(latencyLine)
        }
        if let kept = scheduleKept {
            let lag = statistics.sendLag
            let lagText = "send lag p99 \(milliseconds(lag.value(atQuantile: 0.99))) ms, max \(milliseconds(lag.maximum)) ms"
            if kept {
                lines.append("  schedule      kept (\(lagText))")
            } else {
                var reasons: [String] = []
                if statistics.waitedAtCap > 0 {
                    reasons.append("\(statistics.waitedAtCap) calls waited with all \(connectionCap) connections busy")
                }
                if statistics.expiredUnsent > 0 { reasons.append("\(statistics.expiredUnsent) timed out unsent") }
                if reasons.isEmpty {
                    reasons.append("over 1 % of the calls were sent more than 1 ms late (is the machine busy?)")
                }
                lines.append("  schedule      NOT kept: \(reasons.joined(separator: "; ")) (\(lagText))")
            }
        }
        for example in statistics.examples {
            lines.append("  first \(example.kind): \(example.outcome)")
        }
        for note in notes {
            lines.append("  note: \(note)")
        }
        return lines.joined(separator: "\n")
    }

    /// One JSON object; durations in milliseconds, to the microsecond.
    var json: String {
        let statistics = statistics
        let latency = statistics.latency
        var latencyMembers: [(key: String, value: JSONValue)] = Self.quantiles.map { name, quantile in
            (name, .number(roundedMilliseconds(latency.value(atQuantile: quantile))))
        }
        latencyMembers.append(("max", .number(roundedMilliseconds(latency.maximum))))
        latencyMembers.append(("mean", .number((latency.mean / 1e3).rounded() / 1e3)))
        var members: [(key: String, value: JSONValue)] = [
            ("url", .string(url)),
            ("tool", .string(tool)),
        ]
        switch mode {
        case .fixedRate(let rate):
            members.append(("mode", .string("rate")))
            members.append(("target_rate", .number(rate)))
        case .saturate:
            members.append(("mode", .string("saturate")))
        }
        members += [
            ("duration_s", .number(Double(duration.nanoseconds) / 1e9)),
            ("warmup_s", .number(Double(warmup.nanoseconds) / 1e9)),
            ("connections", .integer(connections)),
            ("connection_cap", .integer(connectionCap)),
            ("peak_connections", .integer(peakConnections)),
            ("connect_failures", .integer(connectFailures)),
            ("sessions", .integer(sessions)),
            ("sessions_closed", .integer(sessionsClosed)),
            ("protocol_version", .string(protocolVersion)),
            ("calls", .integer(statistics.total)),
            ("answered", .integer(statistics.answered)),
            ("calls_per_second", .number((callsPerSecond * 100).rounded() / 100)),
            ("ok", .integer(statistics.ok)),
            ("is_error", .integer(statistics.toolErrors)),
            ("rpc_error", .integer(statistics.rpcErrors)),
            ("http_error", .integer(statistics.httpErrors)),
            ("timeout", .integer(statistics.timeouts)),
            ("connection_error", .integer(statistics.connectionErrors)),
            ("malformed", .integer(statistics.malformed)),
            ("http_statuses", .object(statistics.httpStatuses.sorted { $0.key < $1.key }.map { (String($0.key), .integer($0.value)) })),
            ("rpc_error_codes", .object(statistics.rpcErrorCodes.sorted { $0.key < $1.key }.map { (String($0.key), .integer($0.value)) })),
            ("latency_ms", .object(latencyMembers)),
        ]
        if let kept = scheduleKept {
            let lag = statistics.sendLag
            members.append(
                (
                    "schedule",
                    .object([
                        ("kept", .bool(kept)),
                        ("waited_at_cap", .integer(statistics.waitedAtCap)),
                        ("expired_unsent", .integer(statistics.expiredUnsent)),
                        ("send_lag_p99_ms", .number(roundedMilliseconds(lag.value(atQuantile: 0.99)))),
                        ("send_lag_max_ms", .number(roundedMilliseconds(lag.maximum))),
                    ])
                )
            )
        }
        members.append(("examples", .object(statistics.examples.map { ($0.kind, .string($0.outcome)) })))
        members.append(("notes", .array(notes.map { .string($0) })))
        return JSONValue.object(members).serialized
    }
}

/// Nanoseconds as milliseconds with three decimals.
private func milliseconds(_ nanoseconds: Int64) -> String {
    format(Double(nanoseconds) / 1e6, decimals: 3)
}

private func roundedMilliseconds(_ nanoseconds: Int64) -> Double {
    (Double(nanoseconds) / 1e3).rounded() / 1e3
}

/// `value` with exactly `decimals` digits after the point.
func format(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "-" }
    var scale: Int64 = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int64((abs(value) * Double(scale)).rounded())
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(scaled) }
    let fraction = String(scaled % scale)
    return sign + String(scaled / scale) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
}
