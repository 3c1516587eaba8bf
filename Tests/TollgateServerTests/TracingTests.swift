import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// Traces (docs/operating.md, "Traces"): `tollgate serve` with `tracing:` sends its spans over OTLP/HTTP to a real
/// receiver (Tests/Peers/otlp_receiver.py, which decodes them with the official `opentelemetry-proto` package); one
/// agent call with a W3C `traceparent` goes through the gateway to an HTTP upstream (the fixture server, which logs the
/// headers it receives).
final class TracingTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    static let policy = "version: \"1\"\ndefault: allow\ntools:\n  transfer: {action: deny, reason: not here}\n"

    func waitFor(_ program: RunningProgram, _ text: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !program.standardOutput.contains(text), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertTrue(program.standardOutput.contains(text), program.standardError)
    }

    func lines(_ file: URL) -> [JSONValue] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
    }

    func testOneCallIsOneTraceFromTheAgentsTraceparentThroughTheGatewayToTheUpstream() async throws {
        let id = "\(getpid())-\(UUID().uuidString.prefix(6))"
        let spansFile = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-spans-\(id).jsonl")
        let httpLog = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-traced-http-\(id).jsonl")
        defer {
            try? FileManager.default.removeItem(at: spansFile)
            try? FileManager.default.removeItem(at: httpLog)
        }
        let receiverPort = HTTPProbe.freePort()
        let receiver = try RunningProgram(
            try Peers.python2(), [Peers.otlpReceiver, "--port", String(receiverPort), "--out", spansFile.path])
        defer { receiver.kill() }
        try await waitFor(receiver, "listening")
        let upstreamPort = HTTPProbe.freePort()
        let upstream = try RunningProgram(
            try Peers.python2(), [Peers.fixtureServer, "--transport", "streamable-http", "--port", String(upstreamPort), "--http-log", httpLog.path])
        defer { upstream.kill() }
        try await waitFor(upstream, "READY")
        let gateway = try await GatewayUnderTest.start(
            servers: ["remote": .http(url: "http://127.0.0.1:\(upstreamPort)/mcp", policy: Self.policy)],
            extraConfig: "tracing: {endpoint: \"http://127.0.0.1:\(receiverPort)\", service_name: tollgate-test}\n")
        defer { gateway.stop() }

        // The agent's own trace: a trace id and the id of its client span.
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let agentSpan = "00f067aa0ba902b7"
        let wire = Wire(port: gateway.port, server: "remote", key: gateway.key)
        let session = try wire.initialize()
        let call = wire.post(
            #"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"traced"}}}"#, session: session,
            accept: "application/json", extra: [("traceparent", "00-\(traceID)-\(agentSpan)-01")])
        XCTAssertEqual(call.status, 200, call.body)
        XCTAssertTrue(call.body.contains("traced"), call.body)
        // A refused call in another trace, its traceparent in `_meta` (where MCP carries it) instead of a header.
        let otherTrace = "0af7651916cd43dd8448eb211c80319c"
        let refused = wire.post(
            #"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"transfer","arguments":{"amount":1,"to":"x"},"_meta":{"traceparent":"00-\#(otherTrace)-b7ad6b7169203331-01"}}}"#,
            session: session, accept: "application/json")
        XCTAssertTrue(refused.body.contains("not here"), refused.body)
        // Hostile trace context: a malformed header, an oversized one, an all-zero trace id, a `_meta` value over 512
        // bytes. Each call is answered as usual and starts a trace of its own (none continues the junk).
        let junk = [
            ("traceparent", "00-zzzz-\(agentSpan)-01"), ("traceparent", "00-\(traceID)-\(agentSpan)-01" + String(repeating: "x", count: 8000)),
            ("traceparent", "00-00000000000000000000000000000000-\(agentSpan)-01"),
        ]
        for (index, header) in junk.enumerated() {
            let answer = wire.post(
                #"{"jsonrpc":"2.0","id":\#(20 + index),"method":"tools/call","params":{"name":"echo","arguments":{"text":"junk\#(index)"}}}"#,
                session: session, accept: "application/json", extra: [header])
            XCTAssertEqual(answer.status, 200, answer.body)
            XCTAssertTrue(answer.body.contains("junk\(index)"), answer.body)
        }
        let longMeta = wire.post(
            #"{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"echo","arguments":{"text":"junk3"},"_meta":{"traceparent":"00-\#(traceID)-\#(agentSpan)-01\#(String(repeating: " ", count: 600))"}}}"#,
            session: session, accept: "application/json")
        XCTAssertTrue(longMeta.body.contains("junk3"), longMeta.body)

        // Spans are batched: wait for the call's upstream span and the refused call's decision.
        var spans: [JSONValue] = []
        let deadline = ContinuousClock.now + .seconds(20)
        repeat {
            try await Task.sleep(for: .milliseconds(200))
            spans = lines(spansFile)
        } while ContinuousClock.now < deadline
            && !(spans.contains { $0["name"] == "tools/call echo" && $0["kind"] == 3 }
                && spans.contains { $0["traceId"]?.stringValue == otherTrace && $0["name"] == "tollgate.decide" }
                && spans.filter { $0["name"] == "tools/call echo" && $0["kind"] == 2 }.count >= 5)
        let trace = spans.filter { $0["traceId"]?.stringValue == traceID }
        // The junk calls' request spans (the spans' tools/call echo of kind server beyond the first) continue no one's span.
        let junkRequests = spans.filter { $0["name"] == "tools/call echo" && $0["kind"] == 2 && $0["traceId"]?.stringValue != traceID }
        XCTAssertEqual(junkRequests.count, 4, "each junk call is a trace of its own: \(spans.filter { $0["kind"] == 2 })")
        for span in junkRequests { XCTAssertEqual(span["parentSpanId"], "", "\(span)") }
        func named(_ name: String, kind: Int? = nil) -> JSONValue? {
            trace.first { $0["name"]?.stringValue == name && (kind == nil || $0["kind"]?.doubleValue == Double(kind!)) }
        }
        // SPAN_KIND_SERVER is 2, CLIENT 3, INTERNAL 1.
        let request = try XCTUnwrap(named("tools/call echo", kind: 2), "spans: \(spans)")
        XCTAssertEqual(request["parentSpanId"]?.stringValue, agentSpan, "the request span continues the agent's trace")
        XCTAssertEqual(request["attributes"]?["mcp.method.name"], "tools/call")
        XCTAssertEqual(request["attributes"]?["gen_ai.tool.name"], "echo")
        XCTAssertEqual(request["attributes"]?["rpc.system"], "jsonrpc")
        XCTAssertEqual(request["attributes"]?["mcp.session.id"]?.stringValue, session)
        XCTAssertEqual(request["attributes"]?["http.response.status_code"], 200)
        XCTAssertEqual(request["resource"]?["service.name"], "tollgate-test")
        let requestID = try XCTUnwrap(request["spanId"]?.stringValue)

        let decide = try XCTUnwrap(named("tollgate.decide"), "\(trace)")
        XCTAssertEqual(decide["parentSpanId"]?.stringValue, requestID)
        XCTAssertEqual(decide["attributes"]?["tollgate.decision"], "allow")
        let append = try XCTUnwrap(named("tollgate.log.append"), "\(trace)")
        XCTAssertEqual(append["parentSpanId"], decide["spanId"], "the log commit is the decision's")
        XCTAssertEqual(append["attributes"]?["db.system.name"], "postgresql")
        let upstreamCall = try XCTUnwrap(named("tools/call echo", kind: 3), "\(trace)")
        XCTAssertEqual(upstreamCall["parentSpanId"]?.stringValue, requestID)
        XCTAssertEqual(upstreamCall["attributes"]?["tollgate.outcome"], "success")
        for span in [decide, append, upstreamCall] {
            XCTAssertLessThanOrEqual(request["start"]?.doubleValue ?? 0, span["start"]?.doubleValue ?? -1, "children start within the request")
        }
        XCTAssertLessThanOrEqual(decide["end"]?.doubleValue ?? .infinity, upstreamCall["start"]?.doubleValue ?? 0, "decided, then sent")

        // The upstream received a traceparent of the same trace, whose parent is the gateway's upstream-call span.
        let calls = lines(httpLog).filter { ($0["body"]?["method"]?.stringValue) == "tools/call" }
        XCTAssertFalse(calls.contains { $0["body"]?["params"]?["name"] == "transfer" }, "the refused call never reached the upstream")
        let posted = calls.filter { $0["body"]?["params"]?["arguments"]?["text"] == "traced" }
        XCTAssertEqual(posted.count, 1)
        let headers = posted.first?["headers"]?.arrayValue ?? []
        let traceparent = headers.first { $0.arrayValue?.first?.stringValue?.lowercased() == "traceparent" }?.arrayValue?.last?.stringValue
        XCTAssertEqual(traceparent, "00-\(traceID)-\(upstreamCall["spanId"]?.stringValue ?? "?")-01", "\(headers)")
        // Another request to the upstream carries the call's trace only when made for the call (the tools/list read
        // to decide it), as a child of the request span; the session's handshake is in the trace of its own request.
        for other in lines(httpLog) where other["body"]?["method"]?.stringValue != "tools/call" {
            let sent = (other["headers"]?.arrayValue ?? []).first { $0.arrayValue?.first?.stringValue?.lowercased() == "traceparent" }
            guard let value = sent?.arrayValue?.last?.stringValue, value.contains(traceID) else { continue }
            XCTAssertEqual(other["body"]?["method"], "tools/list", "\(other)")
            XCTAssertEqual(value, "00-\(traceID)-\(requestID)-01")
        }

        // The refused call: its trace continued from `_meta`, decided, never sent upstream.
        let refusedTrace = spans.filter { $0["traceId"]?.stringValue == otherTrace }
        XCTAssertEqual(refusedTrace.first { $0["kind"] == 2 }?["parentSpanId"], "b7ad6b7169203331")
        XCTAssertEqual(refusedTrace.first { $0["name"] == "tollgate.decide" }?["attributes"]?["tollgate.decision"], "deny")
        XCTAssertFalse(refusedTrace.contains { $0["kind"] == 3 && $0["name"] == "tools/call transfer" }, "no upstream call span")
    }

    func testTracingSettingsAreCheckedAndBadOnesAreErrors() throws {
        let good = try GatewayConfigLoader.load(
            "tracing: {endpoint: \"http://127.0.0.1:4318/\", sample_percent: 25}\n", fileName: "g.yaml", directory: "/tmp", environment: [:])
        XCTAssertEqual(good.tracing?.tracesURL, "http://127.0.0.1:4318/v1/traces")
        XCTAssertEqual(good.tracing?.samplePercent, 25)
        XCTAssertEqual(good.tracing?.serviceName, "tollgate")
        for (yaml, path) in [
            ("tracing: {service_name: x}", "tracing.endpoint"), ("tracing: {endpoint: \"ftp://collector\"}", "tracing.endpoint"),
            ("tracing: {endpoint: \"http://user:pw@collector\"}", "tracing.endpoint"),
            ("tracing: {endpoint: \"http://c\", sample_percent: 101}", "tracing.sample_percent"),
            ("tracing: {endpoint: \"http://c\", sample_percent: 0.5}", "tracing.sample_percent"),
            ("tracing: {endpoint: \"http://c\", service_name: \"\"}", "tracing.service_name"),
            ("tracing: {endpoint: \"http://c\", service_name: \"\(String(repeating: "s", count: 101))\"}", "tracing.service_name"),
            ("tracing: {endpoint: \"http://c\", exporter: grpc}", "tracing.exporter"), ("tracing: [http://c]", "tracing"),
        ] {
            XCTAssertThrowsError(try GatewayConfigLoader.load(yaml + "\n", fileName: "g.yaml", directory: "/tmp", environment: [:])) {
                error in
                XCTAssertTrue("\(error)".contains(path), "\(yaml): \(error)")
            }
        }
    }
}
