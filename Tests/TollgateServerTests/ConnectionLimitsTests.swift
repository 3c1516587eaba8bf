import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP server's bounds (issue 20): a request's head and body have a deadline, idle connections are closed, the
/// connections are capped (a new one makes room by closing one that sends nothing), each agent has a session cap of
/// its own, and a session whose only activity is an open GET stream idles out. Raw sockets throughout.
final class ConnectionLimitsTests: XCTestCase {
    static let policy = "version: \"1\"\ndefault: allow\n"

    func fixture() throws -> [String: GatewayUnderTest.Server] {
        ["fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)]
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    static func send(_ socket: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Reads until the peer closes, or what came ends with `end`, or `timeout`: what came, and whether it ended.
    static func readToClose(_ socket: Int32, until end: String? = nil, timeout: Duration) -> (bytes: String, closed: Bool) {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while ContinuousClock.now < deadline {
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let left = max(1, Self.milliseconds(ContinuousClock.now.duration(to: deadline)))
            guard poll(&descriptor, 1, Int32(min(left, 200))) > 0 else { continue }
            let count = recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[0..<count]
            if let end, received.count >= end.utf8.count, received.suffix(end.utf8.count).elementsEqual(end.utf8) {
                return (String(decoding: received, as: UTF8.self), true)
            }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }

    /// Whether the peer has closed `socket` (without waiting).
    static func isClosed(_ socket: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(socket, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    // MARK: - Deadlines

    func testAHeadSentOneByteAtATimeIsClosedAfterTheHeaderTimeoutWhileAnAgentAndHealthzAreServed() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: try fixture(), extraConfig: "limits: {header_timeout: 2s, connection_idle_timeout: 2s}\n")
        defer { gateway.stop() }
        guard let slow = HTTPProbe.connect(port: gateway.port), let silent = HTTPProbe.connect(port: gateway.port) else {
            return XCTFail("no connection")
        }
        defer {
            close(slow)
            close(silent)
        }
        let opened = ContinuousClock.now
        let head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + String(repeating: "a", count: 200) + "\r\n\r\n"
        // One byte every 100 ms on another thread; it stops when the gateway closes the socket.
        let trickle = Thread {
            for character in head {
                if !Self.send(slow, String(character)) { return }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        trickle.start()

        // Meanwhile, others are served at once: /healthz, and an agent's session and call.
        let started = ContinuousClock.now
        let health = HTTPProbe.get(port: gateway.port, path: "/healthz")
        XCTAssertEqual(health?.status, 200)
        let wire = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        let echo = wire.call("echo", #"{"text":"served"}"#, id: 2, session: session)
        XCTAssertEqual(echo?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "served", "\(String(describing: echo))")
        let served = started.duration(to: .now)

        let (answer, closed) = Self.readToClose(slow, timeout: .seconds(6))
        let closedAfter = opened.duration(to: .now)
        XCTAssertTrue(closed, "the slow socket is closed (after \(Self.milliseconds(closedAfter)) ms)")
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 408"), "it is told why: \(answer.prefix(200))")
        XCTAssertTrue(answer.contains("limits.header_timeout"), answer)
        XCTAssertGreaterThan(closedAfter, .milliseconds(1800))
        XCTAssertLessThan(closedAfter, .seconds(4))
        // A connection on which nothing came is closed too, without a word (as an idle one is).
        let (nothing, silentClosed) = Self.readToClose(silent, timeout: .seconds(3))
        XCTAssertTrue(silentClosed, "the silent socket is closed")
        XCTAssertEqual(nothing, "", "with nothing written to it")

        // A keep-alive connection with nothing more to ask is closed after connection_idle_timeout.
        guard let idle = HTTPProbe.connect(port: gateway.port) else { return XCTFail("no connection") }
        defer { close(idle) }
        XCTAssertTrue(Self.send(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        let answered = ContinuousClock.now
        let (kept, idleClosed) = Self.readToClose(idle, timeout: .seconds(6))
        let idleFor = answered.duration(to: .now)
        XCTAssertTrue(kept.hasPrefix("HTTP/1.1 200"), kept)
        XCTAssertTrue(idleClosed, "the idle connection is closed")
        XCTAssertGreaterThan(idleFor, .milliseconds(1800))
        print(
            "slow head: others served in \(Self.milliseconds(served)) ms, slow socket closed with 408 after \(Self.milliseconds(closedAfter)) ms; "
                + "idle keep-alive closed after \(Self.milliseconds(idleFor)) ms")
    }

    // MARK: - The connection cap

    func testPastTheConnectionCapASocketThatSendsNothingMakesRoomAndBusyOnesAreKept() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: try fixture(), extraConfig: "limits: {max_connections: 8, body_timeout: 3s, header_timeout: 30s}\n")
        defer { gateway.stop() }
        // Eight connections reading a body that does not come: busy, never closed to make room.
        var bodies: [Int32] = []
        defer { bodies.forEach { close($0) } }
        for _ in 0..<8 {
            guard let socket = HTTPProbe.connect(port: gateway.port) else { return XCTFail("no connection") }
            bodies.append(socket)
            let head =
                "POST /mcp/fixture HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(gateway.key)\r\nContent-Type: application/json\r\n"
                + "Accept: application/json\r\nContent-Length: 100\r\n\r\n{"
            XCTAssertTrue(Self.send(socket, head))
        }
        try await Task.sleep(for: .milliseconds(300))
        let bodiesSent = ContinuousClock.now
        let refused = HTTPProbe.get(port: gateway.port, path: "/healthz")
        XCTAssertEqual(refused?.status, 503, "at the cap with every connection busy, a new one is refused: \(String(describing: refused))")
        XCTAssertTrue(refused?.body.contains("limits.max_connections") == true, "\(String(describing: refused?.body))")
        XCTAssertFalse(bodies.contains(where: Self.isClosed), "no busy connection was closed to make room")

        // A body that does not come in time closes its connection (body_timeout).
        for socket in bodies { XCTAssertTrue(Self.readToClose(socket, timeout: .seconds(6)).closed, "the slow body's connection is closed") }
        let bodiesClosed = bodiesSent.duration(to: .now)
        XCTAssertLessThan(bodiesClosed, .seconds(5))

        // Eight sockets that send nothing: the next connection closes the one that waited longest and is served.
        var silent: [Int32] = []
        defer { silent.forEach { close($0) } }
        for _ in 0..<8 {
            guard let socket = HTTPProbe.connect(port: gateway.port) else { return XCTFail("no connection") }
            silent.append(socket)
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertFalse(silent.contains(where: Self.isClosed), "under the cap, nothing is closed")
        let started = ContinuousClock.now
        XCTAssertEqual(HTTPProbe.get(port: gateway.port, path: "/healthz")?.status, 200)
        let served = started.duration(to: .now)
        XCTAssertLessThan(served, .seconds(1))
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertTrue(Self.isClosed(silent[0]), "the oldest silent socket made room")
        XCTAssertFalse(silent[2...].contains(where: Self.isClosed), "newer ones are kept")
        let metrics = HTTPProbe.get(port: gateway.port, path: "/metrics")?.body ?? ""
        XCTAssertTrue(metrics.contains(#"tollgate_http_connections_closed_total{reason="evicted"}"#), metrics)
        XCTAssertTrue(metrics.contains(#"tollgate_http_connections_closed_total{reason="refused"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"tollgate_http_connections_closed_total{reason="body_timeout"} 8"#), metrics)
        print(
            "connection cap 8: refused with 503 while 8 bodies were read; slow bodies closed after \(Self.milliseconds(bodiesClosed)) ms; "
                + "/healthz served in \(Self.milliseconds(served)) ms by closing the oldest silent socket")
    }

    // MARK: - Sessions

    func testAnAgentAtItsSessionCapIsRefusedWhileAnotherAgentStillConnects() async throws {
        let gateway = try await GatewayUnderTest.start(servers: try fixture(), extraConfig: "limits: {max_sessions_per_agent: 3}\n")
        defer { gateway.stop() }
        let a = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.keys["agent-a"]!)
        let b = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.keys["agent-b"]!)
        var sessions: [String] = []
        for _ in 0..<3 { sessions.append(try a.initialize()) }
        let initialize =
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wire","version":"1"}}}"#
        let refused = a.post(initialize, accept: "application/json")
        XCTAssertEqual(refused.status, 429, refused.body)
        XCTAssertTrue(refused.body.contains("limits.max_sessions_per_agent"), refused.body)
        XCTAssertNil(refused.header("mcp-session-id"))

        let started = ContinuousClock.now
        let other = try b.initialize()
        let latency = started.duration(to: .now)
        let echo = b.call("echo", #"{"text":"b"}"#, id: 2, session: other)
        XCTAssertEqual(echo?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "b", "\(String(describing: echo))")

        // One ended, the agent may open another.
        let ended = HTTPProbe.request(
            port: gateway.port, method: "DELETE", path: "/mcp/fixture",
            headers: [("Authorization", "Bearer \(gateway.keys["agent-a"]!)"), ("Mcp-Session-Id", sessions[0])])
        XCTAssertEqual(ended?.status, 200)
        _ = try a.initialize()
        print("per-agent session cap 3: the 4th refused with 429; another agent's session started in \(Self.milliseconds(latency)) ms")
    }

    func testASessionWhoseOnlyActivityIsAnOpenGETStreamIdlesOut() async throws {
        let gateway = try await GatewayUnderTest.start(servers: try fixture(), extraConfig: "limits: {session_idle_timeout: 2s}\n")
        defer { gateway.stop() }
        let wire = GatewayBadInputTests.Wire(port: gateway.port, server: "fixture", key: gateway.key)

        func openStream(_ session: String) throws -> Int32 {
            guard let socket = HTTPProbe.connect(port: gateway.port) else { throw RunningProgram.Failure(description: "no connection") }
            let head =
                "GET /mcp/fixture HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(gateway.key)\r\nAccept: text/event-stream\r\n"
                + "Mcp-Session-Id: \(session)\r\n\r\n"
            XCTAssertTrue(Self.send(socket, head))
            return socket
        }

        // A client that listens and does nothing else: its stream is ended, then its session closed.
        let forgotten = try wire.initialize()
        let stream = try openStream(forgotten)
        defer { close(stream) }
        let opened = ContinuousClock.now
        let (text, ended) = Self.readToClose(stream, until: "0\r\n\r\n", timeout: .seconds(8))
        let endedAfter = opened.duration(to: .now)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200"), text)
        XCTAssertTrue(ended, "the idle session's GET stream is ended (after \(Self.milliseconds(endedAfter)) ms)")
        XCTAssertGreaterThan(endedAfter, .milliseconds(1800))

        // A client that opens its stream again when it ends keeps its session (opening it is a request).
        let kept = try wire.initialize()
        var listener = try openStream(kept)
        XCTAssertTrue(Self.readToClose(listener, until: "0\r\n\r\n", timeout: .seconds(8)).closed, "its stream is ended")
        close(listener)
        listener = try openStream(kept)
        defer { close(listener) }

        try await Task.sleep(for: .milliseconds(1500))
        let gone = wire.post(#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#, session: forgotten, accept: "application/json")
        XCTAssertEqual(gone.status, 404, "the forgotten session is closed: \(gone.body)")
        let alive = wire.post(#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#, session: kept, accept: "application/json")
        XCTAssertEqual(alive.status, 200, "the session whose client came back goes on: \(alive.body)")
        print("session_idle_timeout 2s: a GET-only session's stream ended after \(Self.milliseconds(endedAfter)) ms, the session closed after")
    }
}
