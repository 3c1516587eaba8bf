import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// What an agent gets from an upstream directly, it gets through the gateway: log messages sent while a call runs,
/// `subscriptions/listen` with its acknowledgement and the change notifications it carries, and the gateway's own
/// `notifications/tools/list_changed` after a policy reload. The official mcp 2.x client in its default mode
/// (which settles on protocol 2026-07-28) and pinned to 2026-07-28, in front of a stdio and of a Streamable HTTP
/// upstream (the fixture server, whose `chatty`, `change_tools` and `touch` tools make the upstream speak).
final class ProtocolFeaturesTests: XCTestCase {
    static let policy = """
        version: "1"
        default: allow
        """

    enum Upstream: String, CaseIterable { case stdio, http }

    /// A gateway with one server named `fixture` reached over `upstream`; the HTTP fixture process is returned so the
    /// caller keeps it alive.
    func gateway(_ upstream: Upstream) async throws -> (GatewayUnderTest, RunningProgram?) {
        switch upstream {
        case .stdio:
            let gateway = try await GatewayUnderTest.start(servers: [
                "fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)
            ])
            return (gateway, nil)
        case .http:
            let process = try RunningProgram(try Peers.python2(), [Peers.fixtureServer, "--transport", "streamable-http", "--port", "0"])
            let deadline = ContinuousClock.now + .seconds(30)
            var url: String?
            while url == nil, ContinuousClock.now < deadline {
                url = process.standardOutput.split(separator: "\n").first { $0.hasPrefix("READY ") }.map { String($0.dropFirst(6)) }
                if url == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            guard let url else {
                process.kill()
                throw RunningProgram.Failure(description: "the fixture did not start: \(process.standardError.suffix(2000))")
            }
            do {
                let gateway = try await GatewayUnderTest.start(servers: ["fixture": .http(url: url, policy: Self.policy)])
                return (gateway, process)
            } catch {
                process.kill()
                throw error
            }
        }
    }

    func run(_ gateway: GatewayUnderTest, mode: String, steps: JSONValue, logLevel: String? = nil) throws -> Peers.ClientRun {
        var extra = ["--timeout", "20"]
        if let logLevel { extra += ["--log-level", logLevel] }
        return try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("fixture"), key: gateway.key, mode: mode, steps: steps, extraArguments: extra)
    }

    /// The `data` of every `notifications/message` a step received, in order.
    func logMessages(_ step: JSONValue?) -> [String] {
        (step?["notifications"]?.arrayValue ?? []).filter { $0["method"]?.stringValue == "notifications/message" }
            .compactMap { $0["params"]?["data"]?.stringValue }
    }

    /// Runs `body` with a gateway in front of each kind of upstream in turn.
    func forEachUpstream(_ body: (GatewayUnderTest, Upstream) async throws -> Void) async throws {
        for upstream in Upstream.allCases {
            let (gateway, process) = try await gateway(upstream)
            defer {
                gateway.stop()
                process?.kill()
            }
            try await body(gateway, upstream)
        }
    }

    func testLogMessagesSentWhileACallRunsReachTheAgent() async throws {
        try await forEachUpstream { gateway, upstream in
            for mode in ["auto", "2026-07-28"] {
                let run = try run(
                    gateway, mode: mode,
                    steps: [
                        ["op": "call_tool", "name": "chatty", "arguments": ["text": "hello", "count": 3]],
                        ["op": "call_tool", "name": "echo", "arguments": ["text": "quiet"]],
                    ], logLevel: "info")
                XCTAssertEqual(run.status, 0, "\(upstream) \(mode): \(run)")
                XCTAssertEqual(run.connected?["protocolVersion"]?.stringValue, "2026-07-28", "\(upstream) \(mode): \(run)")
                XCTAssertEqual(run.step(0)?["result"]?["content"]?.arrayValue?.first?.stringValue, "hello", "\(upstream) \(mode): \(run)")
                XCTAssertEqual(logMessages(run.step(0)), ["hello 1", "hello 2", "hello 3"], "\(upstream) \(mode): \(run)")
                XCTAssertEqual(logMessages(run.step(1)), [], "a call that logs nothing gets no one else's log: \(run)")
            }
            // Without the opt-in the upstream sends none, and none are made up.
            let quiet = try run(gateway, mode: "auto", steps: [["op": "call_tool", "name": "chatty", "arguments": ["text": "hush"]]])
            XCTAssertEqual(quiet.status, 0, "\(upstream): \(quiet)")
            XCTAssertEqual(logMessages(quiet.step(0)), [], "\(upstream): \(quiet)")
        }
    }

    func testListenGetsItsAcknowledgementAndTheUpstreamsChanges() async throws {
        try await forEachUpstream { gateway, upstream in
            for mode in ["auto", "2026-07-28"] {
                let run = try run(
                    gateway, mode: mode,
                    steps: [
                        [
                            "op": "listen", "tools_list_changed": true, "resource_subscriptions": ["fixture://note"], "events": 2, "timeout": 10,
                            "steps": [
                                ["op": "call_tool", "name": "change_tools"],
                                ["op": "call_tool", "name": "touch", "arguments": ["uri": "fixture://note"]],
                                ["op": "call_tool", "name": "touch", "arguments": ["uri": "fixture://other"]],
                            ],
                        ],
                        ["op": "call_tool", "name": "echo", "arguments": ["text": "after the listen"]],
                    ])
                XCTAssertEqual(run.status, 0, "\(upstream) \(mode): \(run)")
                let listen = run.step(0)
                XCTAssertEqual(listen?["ok"]?.boolValue, true, "the listen request is acknowledged: \(upstream) \(mode): \(run)")
                XCTAssertEqual(listen?["result"]?["honored"]?["toolsListChanged"]?.boolValue, true, "\(run)")
                XCTAssertEqual(
                    listen?["result"]?["honored"]?["resourceSubscriptions"]?.arrayValue?.compactMap(\.stringValue), ["fixture://note"], "\(run)")
                let events = listen?["result"]?["events"]?.arrayValue ?? []
                XCTAssertEqual(events.compactMap { $0["kind"]?.stringValue }, ["ToolsListChanged", "ResourceUpdated"], "\(upstream) \(mode): \(run)")
                XCTAssertEqual(events.last?["uri"]?.stringValue, "fixture://note", "\(run)")
                // Every frame carries the agent's own listen id, never the gateway's remapped one.
                for nested in listen?["result"]?["steps"]?.arrayValue ?? [] {
                    for note in nested["notifications"]?.arrayValue ?? [] {
                        let id = note["params"]?["_meta"]?["io.modelcontextprotocol/subscriptionId"]?.stringValue
                        XCTAssertEqual(id?.hasPrefix("listen-"), true, "the subscription id is the agent's: \(note)")
                    }
                }
                XCTAssertEqual(run.step(1)?["result"]?["content"]?.arrayValue?.first?.stringValue, "after the listen", "\(run)")
            }
        }
    }

    func testTheGatewaysOwnToolListChangeReachesListeners() async throws {
        let (gateway, process) = try await gateway(.stdio)
        defer {
            gateway.stop()
            process?.kill()
        }
        let policyPath = gateway.directory.appendingPathComponent("policies/fixture.yaml").path
        let run = try run(
            gateway, mode: "auto",
            steps: [
                ["op": "list_tools"],
                [
                    "op": "listen", "tools_list_changed": true, "events": 1, "timeout": 15,
                    "steps": [["op": "write_file", "path": .string(policyPath), "text": .string(Self.policy + "\nhide: [echo]\n")]],
                ],
                ["op": "list_tools"],
            ])
        XCTAssertEqual(run.status, 0, "\(run)")
        XCTAssertEqual(run.step(0)?["result"]?.arrayValue?.contains("echo"), true, "\(run)")
        XCTAssertEqual(
            run.step(1)?["result"]?["events"]?.arrayValue?.compactMap { $0["kind"]?.stringValue }, ["ToolsListChanged"],
            "the policy reload is announced on the listen stream: \(run)")
        XCTAssertEqual(run.step(2)?["result"]?.arrayValue?.contains("echo"), false, "the new policy hides echo: \(run)")
    }
}
