import Prometheus

/// The metrics of the per-agent budgets:
/// - `tollgate_refusals_summarized_total{server}`: refused calls past their agent's budget of refusals recorded one by
///   one per minute, counted in a `RefusalsSummarized` event instead (see `RefusalBudget`);
/// - `tollgate_refusal_summaries_dropped_total`: summaries the log did not take after every retry;
/// - `tollgate_pending_approvals_refused_total`: calls that needed approval, refused because their agent had
///   `limits.max_pending_approvals` requests pending.
extension GatewayMetrics {
    func refusalSummarized(server: String) {
        registry.makeCounter(
            name: "tollgate_refusals_summarized_total", labels: [("server", server)],
            help: "Refused calls past their agent's budget of refusals recorded one by one per minute, counted in a summary event."
        ).increment()
    }

    func refusalSummaryDropped() {
        registry.makeCounter(
            name: "tollgate_refusal_summaries_dropped_total", help: "Summaries of refused calls the log did not take after every retry."
        ).increment()
    }

    func pendingApprovalsRefused(server: String) {
        registry.makeCounter(
            name: "tollgate_pending_approvals_refused_total", labels: [("server", server)],
            help: "Calls that needed approval, refused because their agent had limits.max_pending_approvals requests pending."
        ).increment()
    }
}
