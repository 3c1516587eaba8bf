/// `tracing`: OpenTelemetry traces over OTLP/HTTP (docs/operating.md, "Traces"). Absent: no traces (the default).
public struct TracingSettings: Sendable, Equatable {
    /// The collector's OTLP/HTTP base URL, such as `http://127.0.0.1:4318`; spans are POSTed to `<endpoint>/v1/traces`.
    public var endpoint: String
    /// `service.name` of the gateway's spans.
    public var serviceName: String
    /// The share of traces started at the gateway that are kept, in percent; a trace the agent started follows the
    /// agent's sampling decision (`traceparent`).
    public var samplePercent: Int

    public init(endpoint: String, serviceName: String = "tollgate", samplePercent: Int = 100) {
        self.endpoint = endpoint
        self.serviceName = serviceName
        self.samplePercent = samplePercent
    }

    /// Where spans are sent.
    public var tracesURL: String {
        (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces"
    }
}
