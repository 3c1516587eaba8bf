import NIOCore
import NIOPosix
import Testing

@testable import tollgate_load

/// The whole client against ``FakeMCPServer``: handshake, pacing, outcomes, time-outs, clean-up.
struct LoadDriverTests {
    private func run(
        _ server: FakeMCPServer,
        answer: String,
        mode: LoadConfiguration.Mode,
        duration: TimeAmount = .milliseconds(200),
        sessions: Int = 1,
        connections: Int = 4,
        timeout: TimeAmount = .seconds(10),
        headers: [(name: String, value: String)] = [],
        keepSamples: Bool = false
    ) throws -> LoadReport {
        let configuration = LoadConfiguration(
            target: try TargetURL(parsing: server.url),
            headers: headers,
            tool: "echo",
            arguments: #"{"answer":"\#(answer)"}"#,
            mode: mode,
            duration: duration,
            warmup: .zero,
            connections: connections,
            maximumConnections: 64,
            sessions: sessions,
            timeout: timeout,
            keepSamples: keepSamples
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let eventLoop = group.next()
        return try eventLoop.flatSubmit { LoadDriver.run(configuration, address: address, on: eventLoop) }.wait()
    }

    @Test func aFixedRateSendsExactlyTheScheduledCallsOverJSONAndEventStreams() throws {
        let server = try FakeMCPServer()
        defer { server.stop() }
        let report = try run(server, answer: "alternate", mode: .fixedRate(200), duration: .milliseconds(300), sessions: 2)
        #expect(report.statistics.total == 60)
        #expect(report.statistics.ok == 60)
        #expect(report.statistics.latency.count == 60)
        #expect(report.sessions == 2 && report.sessionsClosed == 2)
        #expect(report.protocolVersion == "2025-11-25")
        #expect(report.callsPerSecond == 200)
    }

    @Test func everyMeasuredCallIsKeptWithItsDueTimeOnlyWhenAsked() throws {
        let server = try FakeMCPServer()
        defer { server.stop() }
        let kept = try run(server, answer: "mixed", mode: .fixedRate(200), duration: .milliseconds(300), keepSamples: true)
        #expect(kept.samples.count == 60)
        // Due every 5 ms from the start of the measurement: 0, 5, ..., 295 ms.
        let dues = kept.samples.map { $0.due.nanoseconds / 1_000_000 }.sorted()
        #expect(dues == (0..<60).map { Int64($0 * 5) })
        #expect(kept.samples.allSatisfy { $0.latency.nanoseconds > 0 })
        // "mixed" answers a quarter each with a result, an isError result, a JSON-RPC error and an HTTP error.
        #expect(kept.samples.filter(\.ok).count == 30)
        let plain = try run(server, answer: "alternate", mode: .fixedRate(200), duration: .milliseconds(100))
        #expect(plain.samples.isEmpty && plain.statistics.latency.count == 20)
    }

    @Test func aSampleLineHasItsDueTimeInMillisecondsAndItsLatencyInMicroseconds() {
        let sample = LoadSample(due: .microseconds(1_234_005), latency: .nanoseconds(2_345_678), ok: true)
        #expect(sample.line == "1234.005\t2345\t1")
        #expect(LoadSample(due: .microseconds(7), latency: .microseconds(90), ok: false).line == "0.007\t90\t0")
        #expect(LoadSample.header == "due_ms\tlatency_us\tok")
    }

    @Test func outcomesAreCountedApart() throws {
        let server = try FakeMCPServer()
        defer { server.stop() }
        let report = try run(server, answer: "mixed", mode: .fixedRate(200))
        let statistics = report.statistics
        #expect(statistics.total == 40)
        #expect(statistics.ok == 10 && statistics.toolErrors == 10 && statistics.rpcErrors == 10 && statistics.httpErrors == 10)
        #expect(statistics.httpStatuses == [429: 10])
        #expect(statistics.rpcErrorCodes == [-32602: 10])
        #expect(statistics.answered == 40 && statistics.latency.count == 40)
    }

    @Test func saturationKeepsEveryConnectionBusy() throws {
        let server = try FakeMCPServer()
        defer { server.stop() }
        let report = try run(server, answer: "sse", mode: .saturate, connections: 3)
        #expect(report.statistics.ok > 20)
        #expect(report.statistics.ok == report.statistics.total)
        #expect(report.peakConnections == 3)
        #expect(report.scheduleKept == nil)
    }

    @Test func unansweredCallsTimeOutAndTheSessionIsStillClosed() throws {
        let server = try FakeMCPServer()
        defer { server.stop() }
        let report = try run(server, answer: "never", mode: .fixedRate(50), connections: 2, timeout: .milliseconds(100))
        #expect(report.statistics.total == 10)
        #expect(report.statistics.timeouts == 10)
        #expect(report.statistics.latency.count == 0)
        #expect(report.sessionsClosed == 1)
    }

    @Test func headersReachTheServerAndAFailedHandshakeStopsTheRun() throws {
        let server = try FakeMCPServer(requiredAuthorization: "Bearer right")
        defer { server.stop() }
        let report = try run(server, answer: "json", mode: .fixedRate(100), headers: [("Authorization", "Bearer right")])
        #expect(report.statistics.ok == 20)
        #expect(throws: LoadError.self) {
            try run(server, answer: "json", mode: .fixedRate(100), headers: [("Authorization", "Bearer wrong")])
        }
    }

    @Test func aServerThatIsNotThereIsReportedAsSuch() throws {
        let server = try FakeMCPServer()
        server.stop()
        #expect {
            try run(server, answer: "json", mode: .fixedRate(100))
        } throws: { error in
            guard case LoadError.cannotConnect = error else { return false }
            return true
        }
    }

    @Test func theReportsAreTextAndJSON() throws {
        let server = try FakeMCPServer()
        defer { server.stop() }
        let report = try run(server, answer: "mixed", mode: .fixedRate(200))
        #expect(report.text.contains("ok 10  isError 10  rpc-error 10  http-error 10"))
        let json = try JSONValue(parsing: Array(report.json.utf8))
        #expect(json["ok"]?.integer == 10)
        #expect(json["http_statuses"]?["429"]?.integer == 10)
        #expect(json["latency_ms"]?["p99"] != nil)
        #expect(json["schedule"]?["kept"]?.bool != nil)
    }
}
