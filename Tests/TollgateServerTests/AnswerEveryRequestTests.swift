import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Every request gets an answer it can read: an id the upstream would not echo back exactly is refused at once on
/// every front, and a body over the limit is answered 413 to a client that sends all of it before it reads.
final class AnswerEveryRequestTests: XCTestCase {
    static let policy = "version: \"1\"\ndefault: allow\n"

    /// Ids the peers cannot echo back exactly: a Python upstream drops the request, a JavaScript one rounds the id.
    static let badIDs = [
        "1.5", "1e2", "1e400", "-1.5", "1.0", "true", "{}", "[]", "9007199254740992", "\"" + String(repeating: "i", count: 300) + "\"",
        "\"" + String(repeating: "j", count: 64 << 10) + "\"",
    ]

    static func call(id: String) -> String {
        #"{"jsonrpc":"2.0","id":"# + id + #","method":"tools/call","params":{"name":"echo","arguments":{"text":"never"}}}"#
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    // MARK: - Ids

    func testAnIDTheUpstreamCannotEchoBackIsRefusedAtOnceOverHTTPAndNothingIsForwardedOrLogged() async throws {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ledger-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: ledger) }
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path],
                    policy: Self.policy)
            ],
            extraConfig: "limits: {upstream_timeout: 4s}\n")
        defer { gateway.stop() }
        let wire = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()

        var figures: [String] = []
        for id in Self.badIDs {
            let fronts: [(name: String, session: String?, headers: [(String, String)])] = [
                ("session", session, []), ("stateless", nil, [("MCP-Protocol-Version", "2026-07-28")]),
            ]
            for (front, session, extra) in fronts {
                let started = ContinuousClock.now
                let response = wire.post(Self.call(id: id), session: session, accept: "application/json", extra: extra, timeout: .seconds(10))
                let elapsed = started.duration(to: .now)
                let what = "\(front) id \(id.prefix(24))"
                XCTAssertEqual(response.status, 400, "\(what): \(response.body.prefix(300))")
                let body = try? JSONValue(parsing: response.body)
                XCTAssertEqual(body?["error"]?["code"]?.doubleValue, -32600, "\(what): \(response.body.prefix(300))")
                XCTAssertEqual(body?["id"], .null, "\(what): the error's id is null")
                XCTAssertTrue(body?["error"]?["message"]?.stringValue?.contains("`id`") == true, "\(what) says why: \(response.body.prefix(300))")
                XCTAssertLessThan(elapsed, .seconds(1), "\(what) is refused at once")
                figures.append("\(what): \(response.status) in \(Self.milliseconds(elapsed)) ms")
            }
        }
        print("ids refused:\n  " + figures.joined(separator: "\n  "))

        // The session goes on, and only its one good call reached the upstream and the log.
        let echo = wire.call("echo", #"{"text":"after"}"#, id: 9, session: session)
        XCTAssertEqual(echo?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "after", "\(String(describing: echo))")
        let decided = try await gateway.events(type: "ToolCallDecided")
        XCTAssertEqual(decided.count, 1, "only the good call is decided and logged")
        let calls = ((try? String(contentsOf: ledger, encoding: .utf8)) ?? "").split(separator: "\n")
        XCTAssertEqual(calls.count, 1, "only the good call reached the upstream: \(calls)")
    }

    func testTheStdioFrontAnswersAnIDItCannotPassOnWithAnErrorLineAtOnce() async throws {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ledger-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: ledger) }
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path],
                    policy: Self.policy)
            ],
            extraConfig: "limits: {upstream_timeout: 4s}\n")
        defer { gateway.stop() }
        var lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wire","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ]
        lines += Self.badIDs.map(Self.call(id:))
        lines.append(#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"after"}}}"#)
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-stdin-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: input) }
        try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)

        // The front answers what it has read once stdin ends; a request forwarded upstream would wait there for its
        // time-out (4 s) and come back as a time-out, not as a refusal.
        let started = ContinuousClock.now
        let front = try RunningProgram(
            RunningProgram.tollgateBinary, ["stdio", "fixture", "--config", gateway.configPath, "--database", gateway.database.connectionString],
            environment: ["TOLLGATE_AGENT_KEY": gateway.key], stdin: input.path)
        let status = try front.wait(timeout: .seconds(60))
        let elapsed = started.duration(to: .now)
        XCTAssertEqual(status, 0, front.standardError.suffix(3000).description)
        let answers = front.standardOutput.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        let refusals = answers.filter { $0["error"]?["code"]?.doubleValue == -32600 && $0["id"] == .null }
        XCTAssertEqual(refusals.count, Self.badIDs.count, "one -32600 line with a null id per bad id:\n\(front.standardOutput.prefix(3000))")
        XCTAssertFalse(answers.contains { $0["error"]?["code"]?.doubleValue == -32001 }, "nothing waited for the upstream's time-out")
        let echo = answers.first { $0["id"] == 2 }
        XCTAssertEqual(echo?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "after", "\(String(describing: echo))")
        XCTAssertLessThan(elapsed, .seconds(4), "the whole run takes less than one upstream time-out")
        print("stdio front: \(Self.badIDs.count) bad ids refused, run over in \(Self.milliseconds(elapsed)) ms (with start and handshake)")
        let calls = ((try? String(contentsOf: ledger, encoding: .utf8)) ?? "").split(separator: "\n")
        XCTAssertEqual(calls.count, 1, "only the good call reached the upstream: \(calls)")
    }

    // MARK: - Bodies over the limit

    func testABodyOverTheLimitIsAnswered413ToAClientThatSendsItAllBeforeReading() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)
            ],
            reviewers: ["alice": "reviewer"], extraConfig: "limits: {max_body_bytes: 1048576}\n")
        defer { gateway.stop() }
        let size = 20_000_000
        let mcp =
            "POST /mcp/fixture HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
            + "Authorization: Bearer \(gateway.key)\r\n"
        var figures: [String] = []

        func expectAnswer(_ what: String, _ head: String, body: RawClient.Body, status: Int, line: UInt = #line) {
            let result = RawClient.sendThenRead(port: gateway.port, head: head, body: body)
            XCTAssertEqual(result.status, status, "\(what): \(result)", line: line)
            XCTAssertLessThan(result.elapsed, .seconds(1), "\(what): the answer is read within 1 s: \(result)", line: line)
            figures.append("\(what): \(result.status) in \(Self.milliseconds(result.elapsed)) ms (\(result.sent) bytes sent\(result.sendError))")
        }

        expectAnswer(
            "20 MB, Content-Length, Connection: close", mcp + "Connection: close\r\nContent-Length: \(size)\r\n\r\n", body: .plain(size), status: 413)
        expectAnswer(
            "20 MB chunked, Connection: close", mcp + "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n", body: .chunked(size), status: 413)
        expectAnswer(
            "20 MB without a key",
            "POST /mcp/fixture HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(size)\r\n\r\n",
            body: .plain(size), status: 401)
        expectAnswer(
            "20 MB to /v1 approve",
            "POST /v1/approvals/\(UUID().uuidString.lowercased())/approve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Authorization: Bearer \(gateway.tokens["alice"]!)\r\nConnection: close\r\nContent-Length: \(size)\r\n\r\n",
            body: .plain(size), status: 413)
        print("bodies over the limit:\n  " + figures.joined(separator: "\n  "))

        // With keep-alive the connection goes on once the rest of the body is read.
        let keptAlive = RawClient.sendThenRead(
            port: gateway.port, head: mcp + "Content-Length: \(size)\r\n\r\n", body: .plain(size),
            then: "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(keptAlive.status, 413, "\(keptAlive)")
        XCTAssertLessThan(keptAlive.elapsed, .seconds(1), "\(keptAlive)")
        XCTAssertEqual(keptAlive.statuses, [413, 200], "the next request on the connection is served: \(keptAlive)")
        XCTAssertEqual(HTTPProbe.get(port: gateway.port, path: "/healthz")?.status, 200)
    }

    /// A client that stops sending part-way and keeps its connection open: it reads its 413 at once, and the gateway
    /// resets the connection instead of keeping it half-open with unread data.
    func testAClientThatStopsSendingItsBodyIsAnsweredAndItsConnectionIsNotKeptHalfOpen() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)
            ],
            extraConfig: "limits: {max_body_bytes: 1048576}\n")
        defer { gateway.stop() }
        let socket = try XCTUnwrap(HTTPProbe.connect(port: gateway.port))
        defer { close(socket) }
        let head =
            "POST /mcp/fixture HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer \(gateway.key)\r\n"
            + "Connection: close\r\nContent-Length: 20000000\r\n\r\n"
        let started = ContinuousClock.now
        XCTAssertTrue(RawClient.send(socket, Array(head.utf8) + [UInt8](repeating: 0x78, count: 512 << 10)))
        let answer = RawClient.readResponses(socket, until: 1)
        XCTAssertEqual(answer.statuses.first, 413, "\(answer)")
        XCTAssertLessThan(started.duration(to: .now), .seconds(1))

        let clientPort = RawClient.localPort(socket)
        try await Task.sleep(for: .milliseconds(2500))
        let left = RawClient.tcpStates(localPort: gateway.port, remotePort: clientPort)
        XCTAssertEqual(left, [], "the gateway's side of the connection is gone (states in hex, 05 is FIN-WAIT-2)")
        XCTAssertEqual(HTTPProbe.get(port: gateway.port, path: "/healthz")?.status, 200)
    }
}

/// A raw HTTP/1.1 client over a blocking loopback socket that sends its whole request before it reads, as most
/// clients do, and says how long the answer took.
enum RawClient {
    enum Body {
        case plain(Int)
        case chunked(Int)

        var bytes: [UInt8] {
            switch self {
            case .plain(let count): return [UInt8](repeating: 0x78, count: count)
            case .chunked(let count):
                var out: [UInt8] = []
                out.reserveCapacity(count + count / 100)
                let chunk = 1 << 16
                var left = count
                while left > 0 {
                    let size = min(chunk, left)
                    out += Array((String(size, radix: 16) + "\r\n").utf8)
                    out += [UInt8](repeating: 0x78, count: size)
                    out += Array("\r\n".utf8)
                    left -= size
                }
                out += Array("0\r\n\r\n".utf8)
                return out
            }
        }
    }

    struct Result: CustomStringConvertible {
        var statuses: [Int]
        var elapsed: Duration
        var sent: Int
        var sendError: String
        var text: String
        var status: Int { statuses.first ?? 0 }
        var description: String { "statuses \(statuses) after \(elapsed), \(sent) bytes sent\(sendError); \(text.prefix(300))" }
    }

    /// Sends all of `bytes` (blocking, within the socket's send time-out); false when a send failed.
    @discardableResult
    static func send(_ socket: Int32, _ bytes: [UInt8], sent: inout Int, error: inout String) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if count <= 0 {
                error = ", then send failed: \(String(cString: strerror(errno)))"
                return false
            }
            offset += count
            sent += count
        }
        return true
    }

    static func send(_ socket: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        var error = ""
        return send(socket, bytes, sent: &sent, error: &error)
    }

    /// Reads until `count` whole responses (by `Content-Length`) have come, the connection ends, or the receive time-out.
    static func readResponses(_ socket: Int32, until count: Int) -> (statuses: [Int], text: String) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var statuses: [Int] = []
        while statuses.count < count {
            let read = recv(socket, &buffer, buffer.count, 0)
            if read <= 0 { break }
            received += buffer[0..<read]
            statuses = responses(in: received)
        }
        return (responses(in: received), String(decoding: received.prefix(2000), as: UTF8.self))
    }

    /// The statuses of the whole responses in `bytes` (each with a `Content-Length`).
    static func responses(in bytes: [UInt8]) -> [Int] {
        var statuses: [Int] = []
        var index = 0
        while let split = bytes[index...].firstRange(of: Array("\r\n\r\n".utf8)) {
            let head = String(decoding: bytes[index..<split.lowerBound], as: UTF8.self)
            guard head.hasPrefix("HTTP/1.1 "), let status = Int(head.dropFirst(9).prefix(3)) else { break }
            let length =
                head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            guard bytes.count >= split.upperBound + length else { break }
            statuses.append(status)
            index = split.upperBound + length
        }
        return statuses
    }

    /// Connects, sends `head` and `body` in full (as far as the gateway lets it), then `then`, and only then reads.
    static func sendThenRead(port: Int, head: String, body: Body, then next: String? = nil) -> Result {
        guard let socket = HTTPProbe.connect(port: port) else {
            return Result(statuses: [], elapsed: .zero, sent: 0, sendError: ", no connection", text: "")
        }
        defer { close(socket) }
        let bytes = Array(head.utf8) + body.bytes
        var sent = 0
        var error = ""
        let started = ContinuousClock.now
        if send(socket, bytes, sent: &sent, error: &error), let next { send(socket, Array(next.utf8), sent: &sent, error: &error) }
        let answer = readResponses(socket, until: next == nil ? 1 : 2)
        return Result(statuses: answer.statuses, elapsed: started.duration(to: .now), sent: sent, sendError: error, text: answer.text)
    }

    static func localPort(_ socket: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The states (hex, as `/proc/net/tcp` writes them) of the loopback sockets from `localPort` to `remotePort`.
    static func tcpStates(localPort: Int, remotePort: Int) -> [String] {
        let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
        let local = String(format: ":%04X", localPort)
        let remote = String(format: ":%04X", remotePort)
        return table.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[1].hasSuffix(local), fields[2].hasSuffix(remote) else { return nil }
            return String(fields[3])
        }
    }
}
