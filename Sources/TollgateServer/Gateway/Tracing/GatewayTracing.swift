import Instrumentation
import Logging
import OTel
import ServiceLifecycle
import TollgateCore
import TollgateMCP

/// Traces of `tollgate serve`, when `tracing:` is configured (docs/operating.md, "Traces"): spans are batched and sent
/// over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces` by swift-otel; the W3C trace context is read from agents and
/// written to HTTP upstreams. Logs and metrics keep their own paths (the JSON log, `/metrics`).
enum GatewayTracing {
    /// Spans wait at most this long before they are sent (a batch of 512 goes at once).
    static let exportEvery: Duration = .seconds(1)
    /// The most spans waiting to be sent; past it new spans are dropped.
    static let maxQueuedSpans = 2048
    /// How long one export may take before it is given up.
    static let exportTimeout: Duration = .seconds(10)

    /// Installs the tracer for this process and returns the service that exports its spans (run it beside the
    /// gateway); nil without `tracing:` (no tracer: spans cost next to nothing). Once per process.
    static func bootstrap(_ settings: TracingSettings?, logger: Logger) throws -> (any Service)? {
        guard let settings else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        configuration.propagators = [.traceContext]
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = settings.tracesURL
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.timeout = exportTimeout
        configuration.traces.batchSpanProcessor.scheduleDelay = exportEvery
        configuration.traces.batchSpanProcessor.maxQueueSize = maxQueuedSpans
        configuration.traces.batchSpanProcessor.exportTimeout = exportTimeout
        configuration.traces.sampler =
            settings.samplePercent >= 100
            ? .parentBasedAlwaysOn : (.parentBasedTraceIDRatio(ratio: Double(settings.samplePercent) / 100) ?? .parentBasedAlwaysOn)
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        CallTracing.enabled.store(true, ordering: .relaxed)
        logger.info("traces are sent over OTLP/HTTP", metadata: ["endpoint": "\(settings.tracesURL)", "service": "\(settings.serviceName)"])
        return backend.service
    }
}
