import ArgumentParser
import NIOCore
import NIOPosix

/// `tollgate-load`: a load generator for MCP `tools/call` over Streamable HTTP.
@main
struct TollgateLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate-load",
        abstract: "Measure the latency of MCP tools/call over Streamable HTTP, at a fixed rate or at saturation.",
        discussion: """
            Opens --sessions MCP sessions the way a 2025-11-25 client does (initialize, then \
            notifications/initialized, then every request with MCP-Protocol-Version and Mcp-Session-Id), sends \
            tools/call over a pool of keep-alive HTTP/1.1 connections, and DELETEs the sessions at the end. Answers \
            may be application/json or text/event-stream. A call is ok only when the JSON-RPC response with its id \
            arrives; isError results, JSON-RPC errors, HTTP errors, time-outs, connection errors and malformed \
            answers are counted apart.

            --rate is open loop: call n is due at start + n/rate whatever happened to earlier calls, and its latency \
            is measured from that time, so a stalled server shows in the figures (no coordinated omission). When all \
            connections are busy, more are opened up to --max-connections; the report says if the schedule could not \
            be kept. --saturate keeps --connections calls in flight: each connection sends its next call as soon as \
            the previous one is answered.

            Only calls due (or sent) after the warm-up and before its end are measured. The generator runs on one \
            event loop thread, to leave the other cores to the server under test.

            Examples:
              tollgate-load --url http://127.0.0.1:8000/mcp --tool get_current_time \\
                --arguments '{"timezone":"UTC"}' --rate 200 --duration 10s
              tollgate-load --url http://127.0.0.1:8420/mcp/time \\
                --header 'Authorization: Bearer KEY' --tool get_current_time \\
                --arguments '{"timezone":"UTC"}' --saturate --connections 8 \\
                --format json
            """
    )

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Option(help: "The MCP endpoint, http://HOST:PORT/PATH (for the gateway, http://127.0.0.1:PORT/mcp/<server>).")
    var url: String

    @Option(name: .customLong("header"), help: "A request header 'Name: value', sent on every request (repeatable).")
    var headers: [String] = []

    @Option(help: "The tool to call.")
    var tool: String

    @Option(help: "The tool's arguments, a JSON object.")
    var arguments: String = "{}"

    @Option(help: "Calls per second, open loop (the default is 1000 unless --saturate).")
    var rate: Double?

    @Flag(help: "Send as fast as the server answers: --connections calls in flight.")
    var saturate = false

    @Option(help: "How long to measure: 10s, 500ms, 2m.")
    var duration = DurationArgument(.seconds(10))

    @Option(help: "How long to send before measuring.")
    var warmup = DurationArgument(.seconds(2))

    @Option(help: "Keep-alive connections opened before the clock starts; with --saturate, the calls in flight.")
    var connections = 32

    @Option(help: "The most connections a fixed-rate run opens when all are busy (default: the larger of 256 and --connections).")
    var maxConnections: Int?

    @Option(help: "MCP sessions; calls are spread over them in turn.")
    var sessions = 1

    @Option(help: "How long a call may take, from its scheduled time, before it counts as a time-out.")
    var timeout = DurationArgument(.seconds(10))

    @Option(help: "text (one readable block) or json (one object, for scripts).")
    var format = OutputFormat.text

    @Option(help: "Also write the JSON report to this file (replaced if it exists), whatever --format says.")
    var reportFile: String?

    @Option(
        help: ArgumentHelp(
            "Also write every measured call to this file (replaced if it exists), one tab-separated line each: when it was "
                + "due (ms from the start of the measurement), its latency (µs), and 1 if it was answered with a result."))
    var samplesFile: String?

    func validate() throws {
        if saturate && rate != nil { throw ValidationError("--rate and --saturate exclude each other") }
        if let rate, !(rate > 0 && rate <= 10_000_000) { throw ValidationError("--rate must be above 0 and at most 10000000") }
        if duration.amount.nanoseconds <= 0 { throw ValidationError("--duration must be above 0") }
        if timeout.amount.nanoseconds <= 0 { throw ValidationError("--timeout must be above 0") }
        if !(1...10_000).contains(connections) { throw ValidationError("--connections must be from 1 to 10000") }
        if let maxConnections, !(connections...60_000).contains(maxConnections) {
            throw ValidationError("--max-connections must be from --connections (\(connections)) to 60000")
        }
        if !(1...10_000).contains(sessions) { throw ValidationError("--sessions must be from 1 to 10000") }
        if tool.isEmpty { throw ValidationError("--tool must not be empty") }
        do {
            guard try JSONValue(parsing: Array(arguments.utf8)).isObject else {
                throw ValidationError("--arguments must be a JSON object, such as '{\"timezone\":\"UTC\"}'")
            }
        } catch let error as JSONParseError {
            throw ValidationError("--arguments is not JSON: \(error)")
        }
        for header in headers { _ = try Self.parseHeader(header) }
        _ = try TargetURL(parsing: url)
    }

    func run() throws {
        let target = try TargetURL(parsing: url)
        let configuration = LoadConfiguration(
            target: target,
            headers: try headers.map(Self.parseHeader),
            tool: tool,
            arguments: arguments.trimmingPrefix(while: \.isWhitespace).description,
            mode: saturate ? .saturate : .fixedRate(rate ?? 1000),
            duration: duration.amount,
            warmup: warmup.amount,
            connections: connections,
            maximumConnections: maxConnections ?? max(256, connections),
            sessions: sessions,
            timeout: timeout.amount,
            keepSamples: samplesFile != nil
        )
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(target.host, port: target.port)
        } catch {
            throw LoadError.cannotResolve(host: target.host, reason: String(describing: error))
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let eventLoop = group.next()
        let report = try eventLoop.flatSubmit {
            LoadDriver.run(configuration, address: address, on: eventLoop)
        }.wait()

        print(format == .json ? report.json : report.text)
        if let reportFile {
            do {
                try ReportFile.write(report.json + "\n", to: reportFile)
            } catch {
                StandardError.print("tollgate-load: \(error)")
                throw ExitCode(1)
            }
        }
        if let samplesFile {
            do {
                let lines = [LoadSample.header] + report.samples.sorted { $0.due < $1.due }.map(\.line)
                try ReportFile.write(lines.joined(separator: "\n") + "\n", to: samplesFile)
            } catch {
                StandardError.print("tollgate-load: \(error)")
                throw ExitCode(1)
            }
        }
        if report.statistics.ok == 0 {
            StandardError.print("tollgate-load: no call succeeded")
            throw ExitCode(2)
        }
    }

    /// `Name: value` into its parts; the name must be an HTTP token and neither part may hold a line break.
    static func parseHeader(_ text: String) throws -> (name: String, value: String) {
        guard let colon = text.firstIndex(of: ":") else {
            throw ValidationError("--header '\(text)' must have the form 'Name: value'")
        }
        let name = String(text[..<colon])
        let value = String(text[text.index(after: colon)...].trimmingPrefix(while: \.isWhitespace))
        let tokenCharacters = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        guard !name.isEmpty, name.allSatisfy(tokenCharacters.contains) else {
            throw ValidationError("--header '\(text)': '\(name)' is not a valid header name")
        }
        guard !value.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else {
            throw ValidationError("--header '\(name)': the value must not contain a line break")
        }
        return (name, String(value.reversed().trimmingPrefix(while: \.isWhitespace).reversed()))
    }
}

/// A duration on the command line: `10s`, `500ms`, `1.5m`, `2h`, `250us`; a bare number is seconds.
struct DurationArgument: ExpressibleByArgument {
    var amount: TimeAmount

    init(_ amount: TimeAmount) {
        self.amount = amount
    }

    init?(argument: String) {
        guard let amount = TimeAmount(parsing: argument) else { return nil }
        self.amount = amount
    }

    var defaultValueDescription: String { amount.shortDescription.replacingSpaces() }
}

extension String {
    fileprivate func replacingSpaces() -> String {
        String(filter { $0 != " " })
    }
}
