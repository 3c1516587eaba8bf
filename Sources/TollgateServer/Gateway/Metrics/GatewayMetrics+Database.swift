import Prometheus

extension GatewayMetrics {
    /// `tollgate_log_horizon_held_seconds`: how long the oldest open transaction that appends to the log has held its
    /// readers back (projections, seals, webhooks, held calls' releases); 0 when none does. See `ProjectionRunner`.
    func logHorizonHeld(_ seconds: Double) {
        registry.makeGauge(
            name: "tollgate_log_horizon_held_seconds",
            help: "Seconds the oldest open transaction that appends events has held the log's readers back (0: none)."
        ).set(to: seconds)
    }
}
