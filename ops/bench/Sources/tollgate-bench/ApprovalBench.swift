import ArgumentParser
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import TollgateCore
import TollgateMCP

/// `tollgate-bench approvals`: how long after a reviewer's approval returns the held call reaches its upstream.
///
/// One process plays every part but the gateway: an MCP upstream (Streamable HTTP, one `echo` tool) that notes when
/// each call arrives, the agent (`--held` calls held at once, each replaced by a new one as it is approved), and the
/// reviewer (approving the oldest pending request, one at a time). The reviewer approves through `/v1` (`POST
/// /v1/approvals/ID/approve`), through the reviewer page's form (signed in once, then `POST /ui/approvals/ID/approve`
/// with the session cookie and the CSRF token, as a browser sends it: plain HTTP, no browser), or both, one after the
/// other on the same gateway (`--via`). The gateway is `tollgate serve` (the `--tollgate` binary) on its own embedded
/// PostgreSQL cluster with fsync on. Both times are read from this process's monotonic clock.
struct ApprovalBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals", abstract: "Latency from an approval to the held call reaching its upstream, with many calls held at once.")

    @Option(help: "The tollgate binary to run as the gateway.")
    var tollgate: String

    @Option(help: "Calls held at once.")
    var held = 100

    @Option(help: "Approvals to measure.")
    var approvals = 500

    @Option(help: "text or json.")
    var format = "text"

    @Option(help: "How the reviewer approves: api (/v1), form (the reviewer page's form POST), or both (api, then form).")
    var via = "both"

    func validate() throws {
        guard (1...1000).contains(held) else { throw ValidationError("--held must be from 1 to 1000") }
        guard (1...100_000).contains(approvals) else { throw ValidationError("--approvals must be from 1 to 100000") }
        guard format == "text" || format == "json" else { throw ValidationError("--format must be text or json") }
        guard ["api", "form", "both"].contains(via) else { throw ValidationError("--via must be api, form or both") }
    }

    func run() async throws {
        let arrivals = Arrivals()
        let (upstream, upstreamTask) = try await Self.startUpstream(arrivals)
        defer { upstreamTask.cancel() }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-bench-approvals-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        _ = chmod(work.path, 0o755)
        defer { try? FileManager.default.removeItem(at: work) }
        let key = AgentKey.generate()
        let token = AgentKey.generate()
        try """
        version: "1"
        default: deny
        tools:
          echo: {action: require_approval, approval: {hold: 10m, timeout: 1h}}
        """.write(to: work.appendingPathComponent("policy.yaml"), atomically: true, encoding: .utf8)
        // One agent holds every call: its cap on pending requests (limits.max_pending_approvals, 20 by default) is
        // raised with --held, or only 20 would be held and the rest refused.
        try """
        servers:
          upstream: {url: "\(upstream)", policy: policy.yaml}
        agents:
          - {id: bench-agent, grant: bench, key_hash: "\(AgentKey.hash(key))"}
        reviewers:
          - {id: bench-reviewer, role: reviewer, token_hash: "\(AgentKey.hash(token))"}
        logging: {level: warning}
        limits: {max_held_calls: \(held + 10), max_pending_approvals: \(held + 10)}
        """.write(to: work.appendingPathComponent("tollgate.yaml"), atomically: true, encoding: .utf8)
        let port = Self.freePort()
        let gateway = Process()
        gateway.executableURL = URL(fileURLWithPath: tollgate)
        gateway.arguments = [
            "serve", "--config", work.appendingPathComponent("tollgate.yaml").path, "--listen", "127.0.0.1:\(port)", "--data-dir",
            work.appendingPathComponent("data").path,
        ]
        let log = work.appendingPathComponent("tollgate.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        gateway.standardOutput = logHandle
        gateway.standardError = logHandle
        try gateway.run()
        defer {
            gateway.terminate()
            gateway.waitUntilExit()
        }
        // No redirects followed: the form's answer is a 303, and its own arrival is what is timed.
        let http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                redirectConfiguration: .disallow,
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: held + 16)))
        let base = "http://127.0.0.1:\(port)"
        guard try await Self.waitReady(http, base + "/readyz", process: gateway) else {
            try? await http.shutdown()
            throw ValidationError("the gateway did not become ready:\n" + ((try? String(contentsOf: log, encoding: .utf8)) ?? "").suffix(3000))
        }
        let agent = Agent(http: http, url: base + "/mcp/upstream", key: key)
        try await agent.initialize()
        let reviewer = Reviewer(http: http, base: base, token: token)
        var runs: [(via: String, latencies: [Double], early: Int)] = []
        do {
            for mode in via == "both" ? ["api", "form"] : [via] {
                let approver: any Approver
                if mode == "api" {
                    approver = reviewer
                } else {
                    let form = FormReviewer(api: reviewer)
                    try await form.signIn()
                    approver = form
                }
                let (latencies, early) = try await measure(agent: agent, reviewer: approver, tagPrefix: mode, arrivals: arrivals)
                runs.append((mode, latencies, early))
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try? await http.shutdown()
        for run in runs { report(via: run.via, latencies: run.latencies, early: run.early) }
    }

    /// Holds `--held` calls, approves the oldest pending request through `reviewer` until `--approvals` were measured,
    /// replacing each approved call by a new one; returns each approval's latency (ms) and how many calls arrived
    /// before the approval's answer was read (counted as 0 ms).
    func measure(agent: Agent, reviewer: any Approver, tagPrefix: String, arrivals: Arrivals) async throws -> ([Double], Int) {
        var started = 0
        var calls: [Task<Void, Never>] = []
        func holdOne() {
            let tag = "\(tagPrefix)-held-\(started)"
            started += 1
            calls.append(Task { await agent.call(tag) })
        }
        for _ in 0..<min(held, approvals) { holdOne() }
        var latencies: [Double] = []
        var early = 0
        var queue: [String] = []
        var approved = Set<String>()
        let begin = ContinuousClock.now
        while latencies.count < approvals {
            if queue.isEmpty {
                queue = try await reviewer.pending().filter { !approved.contains($0) }
                if queue.isEmpty {
                    guard begin.duration(to: .now) < .seconds(300) else { throw ValidationError("no pending requests appeared") }
                    try await Task.sleep(for: .milliseconds(20))
                    continue
                }
            }
            let id = queue.removeFirst()
            approved.insert(id)
            let (tag, returned) = try await reviewer.approve(id)
            if started < approvals { holdOne() }
            guard let arrival = await arrivals.wait(for: tag, timeout: .seconds(30)) else {
                throw ValidationError("the approved call \(tag) never reached the upstream")
            }
            if arrival < returned { early += 1 }
            latencies.append(
                max(0, Double((arrival - returned).components.attoseconds) / 1e15 + Double((arrival - returned).components.seconds) * 1000))
        }
        for call in calls { await call.value }
        return (latencies, early)
    }

    func report(via mode: String, latencies: [Double], early: Int) {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)] }
        let report: [(String, Double)] = [
            ("p50_ms", percentile(0.50)), ("p90_ms", percentile(0.90)), ("p99_ms", percentile(0.99)), ("max_ms", sorted.last ?? 0),
            ("mean_ms", sorted.reduce(0, +) / Double(sorted.count)),
        ]
        if format == "json" {
            var object: [String: JSONValue] = [
                "via": .string(mode), "approvals": .number(Double(sorted.count)), "held": .number(Double(held)),
                "before_response": .number(Double(early)),
            ]
            for (name, value) in report { object[name] = .number((value * 1000).rounded() / 1000) }
            print(JSONValue.object(object).canonicalJSON)
        } else {
            let what = mode == "api" ? "approve API (POST /v1/approvals/ID/approve)" : "reviewer page's approve form (POST /ui/approvals/ID/approve)"
            print("\(what) returned -> held call at the upstream, \(sorted.count) approvals, \(held) calls held at once")
            print("(durable embedded PostgreSQL, fsync on; \(early) calls arrived before the approval's response was read, counted as 0 ms)")
            for (name, value) in report { print("  \(name.replacingOccurrences(of: "_ms", with: "")): \(String(format: "%.2f", value)) ms") }
        }
    }

    // MARK: - The parts

    /// When each tagged call reached the upstream.
    final class Arrivals: Sendable {
        private let seen = Mutex<[String: ContinuousClock.Instant]>([:])

        func record(_ tag: String) { seen.withLock { $0[tag] = .now } }

        func wait(for tag: String, timeout: Duration) async -> ContinuousClock.Instant? {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let at = seen.withLock({ $0[tag] }) { return at }
                try? await Task.sleep(for: .microseconds(200))
            }
            return nil
        }
    }

    final class Agent: Sendable {
        let http: HTTPClient
        let url: String
        let key: String
        let session = Mutex<String?>(nil)

        init(http: HTTPClient, url: String, key: String) {
            self.http = http
            self.url = url
            self.key = key
        }

        func post(_ body: String) async throws -> HTTPClientResponse {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(key)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "MCP-Protocol-Version", value: "2025-11-25")
            if let session = session.withLock({ $0 }) { request.headers.add(name: "Mcp-Session-Id", value: session) }
            request.body = .bytes(ByteBuffer(string: body))
            return try await http.execute(request, timeout: .seconds(900))
        }

        func initialize() async throws {
            let response = try await post(
                #"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#
            )
            guard let id = response.headers.first(name: "Mcp-Session-Id") else { throw ValidationError("no session id from the gateway") }
            _ = try await response.body.collect(upTo: 1 << 20)
            session.withLock { $0 = id }
            _ = try await post(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).body.collect(upTo: 1 << 20)
        }

        func call(_ tag: String) async {
            let body = #"{"jsonrpc":"2.0","id":"\#(tag)","method":"tools/call","params":{"name":"echo","arguments":{"text":"\#(tag)"}}}"#
            _ = try? await post(body).body.collect(upTo: 1 << 20)
        }
    }

    /// Who approves: lists the pending requests (oldest first) and approves one, returning its call's tag and when the
    /// approval's answer was read.
    protocol Approver: Sendable {
        func pending() async throws -> [String]
        func approve(_ id: String) async throws -> (String, ContinuousClock.Instant)
    }

    struct Reviewer: Approver {
        let http: HTTPClient
        let base: String
        let token: String

        func send(_ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> JSONValue {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await http.execute(request, timeout: .seconds(30))
            let text = String(buffer: try await response.body.collect(upTo: 16 << 20))
            guard response.status == .ok else { throw ValidationError("\(method) \(path): \(response.status): \(text.prefix(300))") }
            return try JSONValue(parsing: text)
        }

        /// Pending requests, oldest first.
        func pending() async throws -> [String] {
            (try await send(.GET, "/v1/approvals?status=pending&limit=500")["items"]?.arrayValue ?? []).reversed().compactMap {
                $0["id"]?.stringValue
            }
        }

        /// Approves; returns the call's tag and when the answer was read.
        func approve(_ id: String) async throws -> (String, ContinuousClock.Instant) {
            let approval = try await send(.POST, "/v1/approvals/\(id)/approve", body: "{}")
            let returned = ContinuousClock.now
            guard let tag = approval["arguments"]?["text"]?.stringValue else { throw ValidationError("approval \(id) has no arguments.text") }
            return (tag, returned)
        }
    }

    /// The reviewer page, as a browser uses it: signs in once with the reviewer's token (the sign-in form's CSRF token
    /// and pre-session cookie first), then approves with the approve form's POST (session cookie, CSRF token, the
    /// gateway's own Origin). Which call a request holds is read from `/v1` before the POST, outside the timing.
    final class FormReviewer: Approver {
        let api: Reviewer
        let session = Mutex<(cookie: String, csrf: String)>(("", ""))

        init(api: Reviewer) { self.api = api }

        func pending() async throws -> [String] { try await api.pending() }

        typealias Answer = (response: HTTPClientResponse, body: String)

        func send(_ method: HTTPMethod, _ path: String, cookie: String, form: [(String, String)]? = nil) async throws -> Answer {
            var request = HTTPClientRequest(url: api.base + path)
            request.method = method
            if !cookie.isEmpty { request.headers.add(name: "Cookie", value: cookie) }
            if let form {
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.headers.add(name: "Origin", value: api.base)
                request.body = .bytes(ByteBuffer(string: form.map { "\($0.0)=\(Self.encoded($0.1))" }.joined(separator: "&")))
            }
            let response = try await api.http.execute(request, timeout: .seconds(30))
            return (response, String(buffer: try await response.body.collect(upTo: 4 << 20)))
        }

        func signIn() async throws {
            let (form, page) = try await send(.GET, "/ui/sign-in", cookie: "")
            guard form.status == .ok, let pre = Self.cookie("tollgate_ui_pre", in: form), let preToken = Self.csrf(in: page) else {
                throw ValidationError("GET /ui/sign-in: \(form.status), no pre-session cookie or csrf field (is the reviewer page there?)")
            }
            let (signedIn, _) = try await send(.POST, "/ui/sign-in", cookie: pre, form: [("token", api.token), ("csrf", preToken)])
            guard signedIn.status == .seeOther, let cookie = Self.cookie("tollgate_ui", in: signedIn) else {
                throw ValidationError("POST /ui/sign-in: \(signedIn.status), no session cookie")
            }
            let (pending, text) = try await send(.GET, "/ui/pending", cookie: cookie)
            guard pending.status == .ok, let csrf = Self.csrf(in: text) else {
                throw ValidationError("GET /ui/pending: \(pending.status), no csrf field")
            }
            session.withLock { $0 = (cookie, csrf) }
        }

        func approve(_ id: String) async throws -> (String, ContinuousClock.Instant) {
            guard let tag = try await api.send(.GET, "/v1/approvals/\(id)")["arguments"]?["text"]?.stringValue else {
                throw ValidationError("approval \(id) has no arguments.text")
            }
            let (cookie, csrf) = session.withLock { $0 }
            let (response, text) = try await send(.POST, "/ui/approvals/\(id)/approve", cookie: cookie, form: [("csrf", csrf), ("comment", "")])
            let returned = ContinuousClock.now
            guard response.status == .seeOther, response.headers.first(name: "Location")?.contains("done=approved") == true else {
                throw ValidationError("POST /ui/approvals/\(id)/approve: \(response.status) \(text.prefix(300))")
            }
            return (tag, returned)
        }

        /// `name=value` of a cookie the response sets.
        static func cookie(_ name: String, in response: HTTPClientResponse) -> String? {
            response.headers["Set-Cookie"].lazy.compactMap { header -> String? in
                let pair = header.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
                return pair.hasPrefix(name + "=") && pair.count > name.count + 1 ? pair : nil
            }.first
        }

        /// The value of the page's first hidden `csrf` field.
        static func csrf(in page: String) -> String? {
            for tag in page.components(separatedBy: "<input").dropFirst() {
                let inside = tag.prefix { $0 != ">" }
                guard inside.contains(#"name="csrf""#), let start = inside.range(of: #"value=""#) else { continue }
                return String(inside[start.upperBound...].prefix { $0 != "\"" })
            }
            return nil
        }

        static func encoded(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
        }
    }

    static func startUpstream(_ arrivals: Arrivals) async throws -> (String, Task<Void, any Error>) {
        var logger = Logger(label: "bench-upstream")
        logger.logLevel = .warning
        let router = Router()
        router.post("mcp") { request, _ -> Response in
            var body = try await request.body.collect(upTo: 1 << 20)
            let bytes = body.readBytes(length: body.readableBytes) ?? []
            guard let message = try? JSONRPCMessage(parsing: bytes), message.kind == .request, let id = message.id else {
                return Response(status: .accepted)
            }
            let raw = String(decoding: id.raw, as: UTF8.self)
            let result: String
            switch message.method {
            case "initialize":
                result = #"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"bench-upstream","version":"1"}}"#
            case "tools/list":
                result = #"{"tools":[{"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}]}"#
            case "tools/call":
                let text = message.decodedParams()?["arguments"]?["text"]?.stringValue ?? ""
                arrivals.record(text)
                result = #"{"content":[{"type":"text","text":\#(JSONRPCWriter.string(text))}]}"#
            default:
                result = "{}"
            }
            var response = Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"jsonrpc":"2.0","id":\#(raw),"result":\#(result)}"#)))
            if message.method == "initialize" { response.headers[HTTPField.Name("Mcp-Session-Id")!] = UUID().uuidString }
            return response
        }
        router.delete("mcp") { _, _ in Response(status: .ok) }
        router.get("mcp") { _, _ in Response(status: .methodNotAllowed) }
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "bench-upstream"),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            }, logger: logger)
        let task = Task { try await app.runService() }
        var port = 0
        for await value in ports { port = value }
        return ("http://127.0.0.1:\(port)/mcp", task)
    }

    static func waitReady(_ http: HTTPClient, _ url: String, process: Process) async throws -> Bool {
        for _ in 0..<1200 {
            if !process.isRunning { return false }
            if let response = try? await http.execute(HTTPClientRequest(url: url), timeout: .seconds(2)), response.status == .ok { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    static func freePort() -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
