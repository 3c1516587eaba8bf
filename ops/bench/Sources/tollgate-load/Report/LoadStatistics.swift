import NIOCore

/// What happened to the calls of the measured window: counts by outcome and the latency of every answered call.
struct LoadStatistics: Sendable {
    /// A `result` without `isError: true`.
    var ok = 0
    /// A `result` with `isError: true`: the tool (or a policy) refused the call in band.
    var toolErrors = 0
    var rpcErrors = 0
    var httpErrors = 0
    var timeouts = 0
    var connectionErrors = 0
    var malformed = 0
    var httpStatuses: [Int: Int] = [:]
    var rpcErrorCodes: [Int: Int] = [:]
    /// The first outcome of each kind other than `ok`, to show what went wrong.
    var examples: [(kind: String, outcome: String)] = []

    /// From the scheduled time (fixed rate) or the send time (saturation) to the answer, for answered calls.
    var latency = LatencyHistogram()
    /// From the scheduled time to the moment the request was written: the generator's own lateness.
    var sendLag = LatencyHistogram()
    /// Measured calls that had to wait while every connection up to the cap was busy.
    var waitedAtCap = 0
    /// Measured calls that timed out while still waiting for a connection: never sent.
    var expiredUnsent = 0

    /// Calls that got an HTTP answer: ok, isError, JSON-RPC error or HTTP error.
    var answered: Int { ok + toolErrors + rpcErrors + httpErrors }
    var total: Int { answered + timeouts + connectionErrors + malformed }

    mutating func record(_ outcome: ResponseOutcome, latency: TimeAmount) {
        switch outcome {
        case .result(let result):
            if result["isError"]?.bool == true {
                toolErrors += 1
                note("isError", outcome)
            } else {
                ok += 1
            }
        case .rpcError(let code, _):
            rpcErrors += 1
            rpcErrorCodes[code, default: 0] += 1
            note("rpc-error", outcome)
        case .httpError(let status):
            httpErrors += 1
            httpStatuses[status, default: 0] += 1
            note("http-error", outcome)
        case .timedOut:
            timeouts += 1
            return
        case .connectionFailed:
            connectionErrors += 1
            note("connection-error", outcome)
            return
        case .malformed, .acknowledged:
            malformed += 1
            note("malformed", outcome)
            return
        }
        self.latency.record(nanoseconds: latency.nanoseconds)
    }

    private mutating func note(_ kind: String, _ outcome: ResponseOutcome) {
        guard !examples.contains(where: { $0.kind == kind }) else { return }
        var text = outcome.description
        if text.count > 300 { text = String(text.prefix(300)) + "…" }
        examples.append((kind, text))
    }
}
