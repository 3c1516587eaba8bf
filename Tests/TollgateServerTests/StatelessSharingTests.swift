import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// Stateless (2026-07-28) requests share one upstream per server among every agent: none may change that upstream's
/// state for the others, and a `scope: session` limit is never one count for all of them. Raw requests, and the upstream's
/// own record of what reached it (the fixture server's HTTP log).
final class StatelessSharingTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    static let policy = """
        version: "1"
        default: allow
        tools:
          echo:
            limits: [{counter: echo_per_session, window: hour, max: 1, scope: session}]
        """

    static let stateless = [("MCP-Protocol-Version", "2026-07-28")]

    static func request(_ id: Int, _ method: String, _ params: String) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#
    }

    static let meta =
        #""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"wire","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}"#

    func testRequestsThatChangeASessionsStateAreRefusedAndNeverReachTheSharedUpstream() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-stateless-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: log) }
        let upstream = try RunningProgram(
            try Peers.python2(), [Peers.fixtureServer, "--transport", "streamable-http", "--port", "0", "--http-log", log.path])
        defer { upstream.kill() }
        let deadline = ContinuousClock.now + .seconds(30)
        var url: String?
        while url == nil, ContinuousClock.now < deadline {
            url = upstream.standardOutput.split(separator: "\n").first { $0.hasPrefix("READY ") }.map { String($0.dropFirst(6)) }
            if url == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": .http(url: try XCTUnwrap(url), policy: Self.policy)])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)

        let attempts = [
            Self.request(
                1, "initialize",
                #"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"hostile","version":"1"},\#(Self.meta)}"#),
            Self.request(2, "logging/setLevel", #"{"level":"debug",\#(Self.meta)}"#),
            Self.request(3, "resources/subscribe", #"{"uri":"fixture://note",\#(Self.meta)}"#),
            Self.request(4, "resources/unsubscribe", #"{"uri":"fixture://note",\#(Self.meta)}"#),
        ]
        for body in attempts {
            let response = wire.post(body, accept: "application/json", extra: Self.stateless)
            let error = (try? JSONValue(parsing: response.body))?["error"]
            XCTAssertEqual(error?["code"]?.doubleValue, -32600, "\(body) -> \(response.status) \(response.body)")
            XCTAssertTrue(error?["message"]?.stringValue?.contains("shared by every agent") == true, response.body)
        }
        // A stateless call still works, so the upstream was reachable all along.
        let call = wire.post(
            Self.request(5, "tools/call", #"{"name":"add","arguments":{"a":1,"b":2},\#(Self.meta)}"#), accept: "application/json",
            extra: Self.stateless)
        XCTAssertEqual((try? JSONValue(parsing: call.body))?["result"]?["isError"]?.boolValue, false, call.body)
        let methods = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONValue(parsing: String($0))["body"]?["method"]?.stringValue }
        XCTAssertTrue(methods.contains("tools/call"), "\(methods)")
        for refused in ["initialize", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"] {
            XCTAssertFalse(methods.contains(refused), "\(refused) reached the shared upstream: \(methods)")
        }
    }

    func testAScopeSessionLimitInStatelessModeIsCountedPerAgent() async throws {
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)
        ])
        defer { gateway.stop() }
        func echo(_ agent: String, _ id: Int) -> JSONValue? {
            let wire = Wire(port: gateway.port, server: "fixture", key: gateway.keys[agent]!)
            let response = wire.post(
                Self.request(id, "tools/call", #"{"name":"echo","arguments":{"text":"hi"},\#(Self.meta)}"#), accept: "application/json",
                extra: Self.stateless)
            return (try? JSONValue(parsing: response.body))?["result"]
        }
        XCTAssertEqual(echo("agent-a", 1)?["isError"]?.boolValue, false)
        let limited = echo("agent-a", 2)
        XCTAssertEqual(limited?["isError"]?.boolValue, true, "agent-a's second call is over its session's limit of 1")
        XCTAssertTrue(limited?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("Retry after") == true, "\(String(describing: limited))")
        XCTAssertEqual(echo("agent-b", 3)?["isError"]?.boolValue, false, "agent-b's stateless calls are a session of their own")
        let sessions = try await gateway.events(type: ToolCallDecided.type).map {
            try EventCoding.decode(ToolCallDecided.self, from: $0.data).session
        }
        XCTAssertEqual(Set(sessions), ["stateless:agent-a", "stateless:agent-b"])
    }
}
