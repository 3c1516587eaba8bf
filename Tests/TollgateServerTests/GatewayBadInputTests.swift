import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// Every input boundary of `/mcp/<server>` with malformed, oversized and hostile input, and upstreams that crash,
/// hang or write garbage: each gets the right HTTP status and JSON-RPC error, and the gateway keeps serving.
final class GatewayBadInputTests: XCTestCase {
    static let policy = "version: \"1\"\ndefault: allow\n"

    /// Raw Streamable HTTP against the gateway.
    struct Wire {
        let port: Int
        let server: String
        let key: String

        func post(
            _ body: String, session: String? = nil, accept: String = "application/json, text/event-stream", extra: [(String, String)] = [],
            timeout: Duration = .seconds(30)
        )
            -> HTTPProbe.Response
        {
            var headers = [("Content-Type", "application/json"), ("Accept", accept), ("Authorization", "Bearer \(key)")]
            if let session { headers.append(("Mcp-Session-Id", session)) }
            return HTTPProbe.request(
                port: port, method: "POST", path: "/mcp/\(server)", headers: headers + extra, body: Array(body.utf8), timeout: timeout)
                ?? HTTPProbe.Response(status: 0, body: "no answer")
        }

        /// Starts a session as a client does; returns its id.
        func initialize() throws -> String {
            let response = post(
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wire","version":"1"}}}"#,
                accept: "application/json")
            guard response.status == 200, let session = response.header("mcp-session-id") else {
                throw RunningProgram.Failure(description: "initialize failed: \(response.status) \(response.body)")
            }
            XCTAssertEqual(post(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, session: session).status, 202)
            return session
        }

        func call(_ tool: String, _ arguments: String, id: Int, session: String, timeout: Duration = .seconds(30)) -> JSONValue? {
            let response = post(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"\#(tool)","arguments":\#(arguments)}}"#, session: session,
                accept: "application/json", timeout: timeout)
            return try? JSONValue(parsing: response.body)
        }
    }

    func testMalformedAndHostileRequestsGetPreciseErrorsAndTheGatewayKeepsServing() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)
            ],
            extraConfig: "limits: {max_body_bytes: 4096}\nallowed_origins: [\"http://localhost:3000\"]\n")
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()

        func expect(_ response: HTTPProbe.Response, _ status: Int, code: Int?, _ what: String, line: UInt = #line) {
            XCTAssertEqual(response.status, status, "\(what): \(response.body)", line: line)
            if let code {
                let body = try? JSONValue(parsing: response.body)
                XCTAssertEqual(body?["error"]?["code"]?.doubleValue, Double(code), "\(what): \(response.body)", line: line)
                XCTAssertFalse((body?["error"]?["message"]?.stringValue ?? "").isEmpty, "\(what) says why", line: line)
            }
        }

        expect(wire.post("{not json", session: session), 400, code: -32700, "malformed JSON")
        expect(wire.post(#"{"jsonrpc":"2.0","id":1,"method":"tools/list""#, session: session), 400, code: -32700, "truncated JSON")
        expect(wire.post(#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#, session: session), 400, code: -32600, "a batch")
        expect(wire.post(#""just a string""#, session: session), 400, code: -32600, "not an object")
        expect(wire.post(#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#, session: session), 400, code: -32600, "wrong jsonrpc version")
        expect(wire.post(#"{"jsonrpc":"2.0","id":{"x":1},"method":"tools/list"}"#, session: session), 400, code: -32600, "an object id")
        expect(wire.post(String(repeating: "[", count: 3000), session: session), 400, code: -32700, "deep nesting")
        expect(wire.post("\u{FEFF}\u{0}\u{1}", session: session), 400, code: -32700, "binary junk")
        expect(wire.post(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#), 400, code: -32600, "no session id")
        expect(wire.post(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: "no-such-session"), 404, code: -32001, "unknown session")
        expect(
            wire.post(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: session, extra: [("MCP-Protocol-Version", "1999-01-01")]), 400,
            code: -32600, "unsupported protocol version")
        let big =
            #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":""# + String(repeating: "x", count: 10_000)
            + #""}}}"#
        expect(wire.post(big, session: session), 413, code: -32600, "oversized body")
        let chunked = HTTPProbe.raw(
            port: gateway.port,
            request: Array(
                ("POST /mcp/fixture HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer \(gateway.key)\r\n"
                    + "Mcp-Session-Id: \(session)\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n" + String(repeating: "y", count: 10_000)
                    + "\r\n0\r\n\r\n").utf8))
        XCTAssertEqual(chunked?.status, 413, "an oversized chunked body without Content-Length: \(chunked?.body ?? "none")")

        let plain = HTTPProbe.request(
            port: gateway.port, method: "POST", path: "/mcp/fixture",
            headers: [("Content-Type", "text/plain"), ("Authorization", "Bearer \(gateway.key)"), ("Mcp-Session-Id", session)], body: Array("{}".utf8)
        )
        XCTAssertEqual(plain?.status, 415, "wrong content type")
        let unknownServer = Wire(port: gateway.port, server: "nope", key: gateway.key).post(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        XCTAssertEqual(unknownServer.status, 404, "unknown server")
        let badKey = Wire(port: gateway.port, server: "fixture", key: "tg_not-a-key").post(
            #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, session: session)
        XCTAssertEqual(badKey.status, 401)
        XCTAssertTrue(badKey.header("www-authenticate")?.hasPrefix("Bearer") == true, "\(badKey.headers)")
        let noKey = HTTPProbe.request(
            port: gateway.port, method: "POST", path: "/mcp/fixture", headers: [("Content-Type", "application/json")], body: Array("{}".utf8))
        XCTAssertEqual(noKey?.status, 401)
        let otherAgent = Wire(port: gateway.port, server: "fixture", key: gateway.keys["agent-b"]!)
            .post(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, session: session)
        XCTAssertEqual(otherAgent.status, 404, "another agent's session looks like no session")
        expect(
            wire.post(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, session: session, extra: [("Origin", "http://evil.example")]), 403, code: -32600,
            "foreign Origin")
        XCTAssertEqual(
            wire.post(#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#, session: session, extra: [("Origin", "http://localhost:3000")]).status, 200)
        let get = HTTPProbe.request(
            port: gateway.port, method: "GET", path: "/mcp/fixture",
            headers: [("Accept", "application/json"), ("Authorization", "Bearer \(gateway.key)"), ("Mcp-Session-Id", session)])
        XCTAssertEqual(get?.status, 406, "GET without text/event-stream")
        let put = HTTPProbe.request(port: gateway.port, method: "PUT", path: "/mcp/fixture", headers: [("Authorization", "Bearer \(gateway.key)")])
        XCTAssertEqual(put?.status, 405)
        let missingName = wire.call("", "{}", id: 5, session: session)
        XCTAssertEqual(missingName?["error"]?["code"]?.doubleValue, -32602, "an unknown (empty) tool name")
        let noParams = try? JSONValue(
            parsing: wire.post(#"{"jsonrpc":"2.0","id":6,"method":"tools/call"}"#, session: session, accept: "application/json").body)
        XCTAssertEqual(noParams?["error"]?["code"]?.doubleValue, -32602, "tools/call without params")

        // After all that, the session and the gateway still work.
        let echo = wire.call("echo", #"{"text":"still here"}"#, id: 7, session: session)
        XCTAssertEqual(echo?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "still here", "\(String(describing: echo))")
        XCTAssertEqual(HTTPProbe.get(port: gateway.port, path: "/healthz")?.status, 200)
        let deleted = HTTPProbe.request(
            port: gateway.port, method: "DELETE", path: "/mcp/fixture",
            headers: [("Authorization", "Bearer \(gateway.key)"), ("Mcp-Session-Id", session)])
        XCTAssertEqual(deleted?.status, 200)
        expect(wire.post(#"{"jsonrpc":"2.0","id":8,"method":"ping"}"#, session: session), 404, code: -32001, "a deleted session")
    }

    func testAnUpstreamThatCrashesHangsOrWritesGarbageGetsAnAnswerAndTheSessionGoesOn() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)
            ],
            extraConfig: "limits: {upstream_timeout: 3s}\n")
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()

        let garbage = wire.call("garbage", #"{"text":"this is not JSON-RPC"}"#, id: 1, session: session)
        XCTAssertEqual(garbage?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "ok", "garbage on stdout is skipped")
        XCTAssertTrue(gateway.log.contains("not JSON-RPC"), "and logged")
        let line = gateway.log.split(separator: "\n").first { $0.contains("not JSON-RPC") } ?? ""
        XCTAssertTrue(line.contains("server=fixture") && line.contains("agent=") && line.contains("output="), "with the session's metadata: \(line)")

        let hang = wire.call("slow", #"{"seconds":30}"#, id: 2, session: session)
        XCTAssertEqual(hang?["error"]?["code"]?.doubleValue, -32001, "a hung upstream times out: \(String(describing: hang))")

        let crash = wire.call("die", #"{"code":3}"#, id: 3, session: session)
        XCTAssertEqual(crash?["error"]?["code"]?.doubleValue, -32603, "a dead upstream is an internal error: \(String(describing: crash))")
        XCTAssertTrue(crash?["error"]?["message"]?.stringValue?.contains("stopped") == true)

        // The next call restarts the server (replaying initialize) and works. The gateway gives a restarted server's
        // handshake up to 30 s (an interpreter starting on a busy machine), so the client here waits longer than that.
        let echo = wire.call("echo", #"{"text":"after the crash"}"#, id: 4, session: session, timeout: .seconds(60))
        XCTAssertEqual(
            echo?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "after the crash",
            "\(String(describing: echo))\n\(gateway.log.suffix(3000))")

        let outcomes = try await gateway.events(type: "ToolCallCompleted", atLeast: 4).map {
            try EventCoding.decode(ToolCallCompleted.self, from: $0.data).outcome
        }
        XCTAssertEqual(outcomes, ["success", "timed_out", "transport_error", "success"])
    }

    func testAnHTTPUpstreamThatFailsACallWithAStatusGetsAnErrorAndTheSessionGoesOn() async throws {
        let upstreamPort = HTTPProbe.freePort()
        let upstream = try RunningProgram(
            try Peers.python2(),
            [Peers.fixtureServer, "--transport", "streamable-http", "--port", String(upstreamPort), "--http-status", "echo=503"])
        defer { upstream.kill() }
        let deadline = ContinuousClock.now + .seconds(30)
        while !upstream.standardOutput.contains("READY"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let gateway = try await GatewayUnderTest.start(servers: ["remote": .http(url: "http://127.0.0.1:\(upstreamPort)/mcp", policy: Self.policy)])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "remote", key: gateway.key)
        let session = try wire.initialize()

        // The upstream answers this call with a bare HTTP 503: the agent gets an error that says so.
        let failed = wire.call("echo", #"{"text":"1"}"#, id: 2, session: session)
        XCTAssertNotNil(failed?["error"]?["code"]?.doubleValue, "\(String(describing: failed))")
        XCTAssertTrue(failed?["error"]?["message"]?.stringValue?.contains("HTTP 503") == true, "\(String(describing: failed))")
        // Another tool on the same session still works.
        let added = wire.call("add", #"{"a":2,"b":3}"#, id: 3, session: session)
        XCTAssertEqual(added?["result"]?["isError"]?.boolValue, false, "\(String(describing: added))")

        let outcomes = try await gateway.events(type: "ToolCallCompleted", atLeast: 2).map {
            try EventCoding.decode(ToolCallCompleted.self, from: $0.data).outcome
        }
        XCTAssertEqual(outcomes, ["transport_error", "success"])
    }

    func testDiscoveryGoesToTheUpstreamWhichAnswersHonestly() async throws {
        let gateway = try await GatewayUnderTest.start(servers: [
            "modern": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy),
            "legacy": .stdio(command: try Peers.python1(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy),
        ])
        defer { gateway.stop() }
        // As mcp 2.3's client sends it: version, client information and capabilities in `_meta`, and the version header.
        let discover =
            #"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","#
            + #""io.modelcontextprotocol/clientInfo":{"name":"wire","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#
        let modern = Wire(port: gateway.port, server: "modern", key: gateway.key)
            .post(discover, accept: "application/json", extra: [("MCP-Protocol-Version", "2026-07-28")])
        XCTAssertEqual(modern.status, 200)
        let answer = try JSONValue(parsing: modern.body)
        XCTAssertNotNil(answer["result"], "an upstream that speaks 2026-07-28 answers discovery: \(modern.body)")
        XCTAssertEqual(answer["id"], 1, "with the agent's own id")

        let started = ContinuousClock.now
        let legacy = Wire(port: gateway.port, server: "legacy", key: gateway.key)
            .post(discover, accept: "application/json", extra: [("MCP-Protocol-Version", "2026-07-28")])
        XCTAssertLessThan(started.duration(to: .now), .seconds(10), "within a client's 10 s discovery timeout, the server's own start included")
        XCTAssertEqual(legacy.status, 200)
        XCTAssertNotNil((try JSONValue(parsing: legacy.body))["error"], "a legacy upstream refuses it, so clients fall back: \(legacy.body)")
    }
}
