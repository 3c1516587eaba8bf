import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// `limits.upstream_timeout` holds on every path: a Streamable HTTP upstream that answers a call with one JSON body
/// (not an event stream) after far longer than the limit still gets the agent its error within the limit and a little.
final class UpstreamTimeoutTests: XCTestCase {
    func testAnHTTPUpstreamAnsweringWithJSONLateIsTimedOut() async throws {
        let upstream = try RunningProgram(
            try Peers.python2(), [Peers.fixtureServer, "--transport", "streamable-http", "--port", "0", "--json-response"])
        defer { upstream.kill() }
        let deadline = ContinuousClock.now + .seconds(30)
        var url: String?
        while url == nil, ContinuousClock.now < deadline {
            url = upstream.standardOutput.split(separator: "\n").first { $0.hasPrefix("READY ") }.map { String($0.dropFirst(6)) }
            if url == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": .http(url: try XCTUnwrap(url), policy: "version: \"1\"\ndefault: allow\n")],
            extraConfig: "limits:\n  upstream_timeout: 3s\n")
        defer { gateway.stop() }
        for mode in ["auto", "legacy"] {
            let run = try Peers.runClient(
                python: try Peers.python2(), url: gateway.url("fixture"), key: gateway.key, mode: mode,
                steps: [
                    ["op": "call_tool", "name": "slow", "arguments": ["seconds": 30], "timeout": 25],
                    ["op": "call_tool", "name": "echo", "arguments": ["text": "still served"], "timeout": 25],
                ])
            XCTAssertEqual(run.status, 0, "\(mode): \(run)")
            let slow = run.step(0)
            let elapsed = slow?["elapsed_ms"]?.doubleValue ?? .infinity
            XCTAssertLessThan(elapsed, 5_000, "\(mode): the agent hears within the 3 s limit and a little: \(run)")
            XCTAssertEqual(slow?["error"]?["code"]?.doubleValue, -32001, "\(mode): the gateway's time-out: \(run)")
            XCTAssertTrue(slow?["error"]?["message"]?.stringValue?.contains("did not answer within 3 s") == true, "\(mode): \(run)")
            XCTAssertEqual(run.step(1)?["result"]?["content"]?.arrayValue?.first?.stringValue, "still served", "\(mode): \(run)")
        }
    }
}
