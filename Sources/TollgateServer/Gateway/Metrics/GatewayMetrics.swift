import Prometheus
import Synchronization

/// The gateway's Prometheus metrics, served at `/metrics`:
/// - `tollgate_decisions_total{server,outcome}`: every `tools/call` decided (allow, deny, limited, require_approval,
///   hidden, error);
/// - `tollgate_calls_completed_total{server,outcome}` and `tollgate_upstream_call_seconds{server}`: forwarded calls
///   by how they ended, and how long the upstream took;
/// - `tollgate_relay_overhead_seconds`: time the gateway adds to a `tools/call` before forwarding it (deciding and
///   recording the decision);
/// - `tollgate_sessions_open{server}`: relay sessions open now;
/// - `tollgate_held_call_endings_total{outcome}`: how held calls ended for their agents (released, denied, expired,
///   pending when the hold ended);
/// - `tollgate_outcomes_waiting` and `tollgate_outcomes_dropped_total{reason}`: calls' outcomes kept in memory for the
///   database to answer again, and those given up (`backlog_full`, `refused`, `shutdown`); see `OutcomeBacklog`.
/// - `tollgate_http_connections` and `tollgate_http_connections_closed_total{reason}`: HTTP connections open now, and
///   those the gateway closed (`header_timeout`, `body_timeout`, `idle`, `evicted`, `refused`); see `ConnectionGuard`.
final class GatewayMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let overhead: DurationHistogram
    /// The per-label metrics already made, by name and labels: the registry's own lookup (a lock, the labels hashed and
    /// compared, the buckets checked) would otherwise run three times for every call.
    private let counters = Mutex<[String: Counter]>([:])
    private let histograms = Mutex<[String: DurationHistogram]>([:])

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.overhead = registry.makeDurationHistogram(
            name: "tollgate_relay_overhead_seconds",
            buckets: [
                .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
            ],
            help: "Time from a tools/call arriving to it being forwarded upstream or refused (deciding and recording).")
    }

    func decided(_ outcome: String, server: String) {
        Self.made(in: counters, "decisions", server, outcome) {
            registry.makeCounter(
                name: "tollgate_decisions_total", labels: [("server", server), ("outcome", outcome)], help: "tools/call decisions by outcome.")
        }.increment()
    }

    func completed(_ outcome: String, server: String, duration: Duration) {
        Self.made(in: counters, "completed", server, outcome) {
            registry.makeCounter(
                name: "tollgate_calls_completed_total", labels: [("server", server), ("outcome", outcome)],
                help: "Forwarded tools/call requests by how they ended.")
        }.increment()
        Self.made(in: histograms, "upstream", server) {
            registry.makeDurationHistogram(
                name: "tollgate_upstream_call_seconds", labels: [("server", server)],
                buckets: [
                    .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500),
                    .seconds(1), .seconds(5), .seconds(30), .seconds(120),
                ],
                help: "Time the upstream took to answer a forwarded tools/call.")
        }.record(duration)
    }

    /// The metric for these labels in `cache`, made by `make` the first time.
    private static func made<M>(in cache: borrowing Mutex<[String: M]>, _ name: String, _ labels: String..., make: () -> M) -> M {
        let key = ([name] + labels).joined(separator: "\u{0}")
        return cache.withLock { made in
            if let metric = made[key] { return metric }
            let metric = make()
            made[key] = metric
            return metric
        }
    }

    func relayOverhead(_ duration: Duration) {
        overhead.record(duration)
    }

    func approvalOutcome(_ outcome: String) {
        registry.makeCounter(
            name: "tollgate_held_call_endings_total", labels: [("outcome", outcome)], help: "How held tools/call requests ended for their agents."
        ).increment()
    }

    func outcomesWaiting(_ count: Int) {
        registry.makeGauge(
            name: "tollgate_outcomes_waiting", help: "Calls' outcomes kept in memory until the database answers again (not yet in the log)."
        ).set(to: Double(count))
    }

    func outcomeDropped(_ reason: String) {
        Self.made(in: counters, "outcomes_dropped", reason) {
            registry.makeCounter(
                name: "tollgate_outcomes_dropped_total", labels: [("reason", reason)],
                help: "Calls' outcomes never written to the log: backlog_full, refused (by the log) or shutdown.")
        }.increment()
    }

    func sessionOpened(server: String) {
        sessions(server).increment()
    }

    func sessionClosed(server: String) {
        sessions(server).decrement()
    }

    private func sessions(_ server: String) -> Gauge {
        registry.makeGauge(name: "tollgate_sessions_open", labels: [("server", server)], help: "Relay sessions open now.")
    }

    func httpConnections(_ count: Int) {
        registry.makeGauge(name: "tollgate_http_connections", help: "HTTP connections open now.").set(to: Double(count))
    }

    func httpConnectionClosed(_ reason: String) {
        Self.made(in: counters, "http_connections_closed", reason) {
            registry.makeCounter(
                name: "tollgate_http_connections_closed_total", labels: [("reason", reason)],
                help: "HTTP connections the gateway closed: header_timeout, body_timeout, idle, evicted (to make room) or refused (at the cap).")
        }.increment()
    }

    /// The Prometheus text exposition.
    func render() -> [UInt8] {
        recordBuffers()
        return registry.emitToBuffer()
    }
}
