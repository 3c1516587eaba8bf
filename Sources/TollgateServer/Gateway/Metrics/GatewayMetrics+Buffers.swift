import Synchronization
import TollgateMCP

/// What the relay holds for agents that have not read it yet (``BufferBudget``), read when `/metrics` is rendered:
/// - `tollgate_buffered_bytes` and `tollgate_buffered_bytes_peak`: bytes held now, and the most held at once, within
///   `limits.max_buffered_bytes`;
/// - `tollgate_relay_messages_dropped_total{reason}`: messages not kept for a slow or absent reader: `stream_full` (a
///   request's or listening stream's own bound), `process_full` (the process's), `backlog_full` (a session's backlog
///   for its next listening stream), `answer_replaced` (an answer the process could not hold, replaced by an error).
extension GatewayMetrics {
    func recordBuffers(_ budget: BufferBudget = .process) {
        registry.makeGauge(name: "tollgate_buffered_bytes", help: "Bytes the relay holds for agents that have not read them yet.")
            .set(to: Double(budget.bufferedBytes))
        registry.makeGauge(name: "tollgate_buffered_bytes_peak", help: "The most bytes the relay has held at once for agents' unread messages.")
            .set(to: Double(budget.peakBytes))
        let key = ObjectIdentifier(registry)
        for reason in BufferBudget.Drop.allCases {
            let now = budget.dropped(reason)
            let delta = reportedDrops.withLock { reported -> Int in
                let before = reported[key, default: [:]][reason, default: 0]
                reported[key, default: [:]][reason] = now
                return now - before
            }
            let counter = registry.makeCounter(
                name: "tollgate_relay_messages_dropped_total", labels: [("reason", reason.rawValue)],
                help: "Messages for agents not kept: stream_full, process_full, backlog_full, answer_replaced.")
            if delta > 0 { counter.increment(by: Int64(delta)) }
        }
    }
}

/// The drop counts already reported, per registry.
private let reportedDrops = Mutex<[ObjectIdentifier: [BufferBudget.Drop: Int]]>([:])
