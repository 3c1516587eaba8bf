import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// A call's quota comes back only when the call provably did not run upstream: it was never written to the upstream,
/// or the upstream refused it with -32601 or -32602. An upstream that acts and then fails (an HTTP 503 after the
/// tool ran, a child that exits mid-call) keeps it, so failing on purpose cannot buy an agent more calls. The
/// fixture's ledger says how often the tool really ran.
final class QuotaRefundTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    /// Allows everything, with `tool` limited to two calls a day per agent.
    static func twoCalls(of tool: String) -> String {
        """
        version: "1"
        default: allow
        tools:
          "\(tool)":
            limits: [{counter: calls, window: day, max: 2, scope: agent}]
        """
    }

    static func temporaryFile(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(name)-\(UUID().uuidString.prefix(8)).jsonl")
    }

    /// How many calls of `tool` the fixture ran, from its ledger.
    static func executions(of tool: String, in ledger: URL) -> Int {
        let text = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { (try? JSONValue(parsing: String($0)))?["tool"]?.stringValue == tool }.count
    }

    /// The fixture over Streamable HTTP with `options`, once it accepts connections; its URL.
    static func httpFixture(_ options: [String]) async throws -> (program: RunningProgram, url: String) {
        let port = HTTPProbe.freePort()
        let program = try RunningProgram(
            try Peers.python2(), [Peers.fixtureServer, "--transport", "streamable-http", "--port", String(port)] + options)
        let deadline = ContinuousClock.now + .seconds(30)
        while !program.standardOutput.contains("READY"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        guard program.standardOutput.contains("READY") else {
            program.kill()
            throw RunningProgram.Failure(description: "the fixture did not start: \(program.standardError.suffix(2000))")
        }
        return (program, "http://127.0.0.1:\(port)/mcp")
    }

    func completed(_ gateway: GatewayUnderTest, atLeast count: Int) async throws -> [ToolCallCompleted] {
        try await gateway.events(type: "ToolCallCompleted", atLeast: count).map { try EventCoding.decode(ToolCallCompleted.self, from: $0.data) }
    }

    func decisions(_ gateway: GatewayUnderTest) async throws -> [String] {
        try await gateway.events(type: "ToolCallDecided").map { try EventCoding.decode(ToolCallDecided.self, from: $0.data).decision }
    }

    func isRateLimited(_ reply: JSONValue?) -> Bool {
        reply?["result"]?["isError"]?.boolValue == true
            && reply?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("rate limit") == true
    }

    // MARK: - Acted, then failed: the quota is kept

    func testAnHTTPUpstreamThatActsThenAnswers503CannotBeCalledPastTheLimit() async throws {
        let ledger = Self.temporaryFile("ledger")
        let upstream = try await Self.httpFixture(["--ledger", ledger.path, "--http-status-after", "transfer=503"])
        defer { upstream.program.kill() }
        let gateway = try await GatewayUnderTest.start(servers: ["remote": .http(url: upstream.url, policy: Self.twoCalls(of: "transfer"))])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "remote", key: gateway.key)
        let session = try wire.initialize()

        let replies = (1...10).map { wire.call("transfer", #"{"amount":100,"to":"mallory"}"#, id: 10 + $0, session: session) }
        let executed = Self.executions(of: "transfer", in: ledger)
        XCTAssertLessThanOrEqual(executed, 2, "ten calls that each ran and then failed: at most the limit ran")
        XCTAssertEqual(executed, 2, "the first two reached the tool")
        for reply in replies.prefix(2) {
            XCTAssertTrue(reply?["error"]?["message"]?.stringValue?.contains("HTTP 503") == true, "\(String(describing: reply))")
        }
        XCTAssertTrue(replies.dropFirst(2).allSatisfy(isRateLimited), "\(replies.dropFirst(2))")

        let outcomes = try await completed(gateway, atLeast: 2)
        XCTAssertEqual(outcomes.map(\.outcome), ["transport_error", "transport_error"], "the log says they failed after sending")
        XCTAssertTrue(outcomes.allSatisfy { $0.released.isEmpty }, "and gave nothing back")
        let decided = try await decisions(gateway)
        XCTAssertEqual(decided.filter { $0 == "allow" }.count, 2)
        XCTAssertEqual(decided.filter { $0 == "limited" }.count, 8)
        try await assertRateWindowsEqualTheLog(gateway)
    }

    func testAStdioServerThatActsThenExitsCannotBeCalledPastTheLimit() async throws {
        let ledger = Self.temporaryFile("ledger")
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": .stdio(
                command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path],
                policy: Self.twoCalls(of: "die"))
        ])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()

        // Each call that reaches the server writes its ledger line, then the process exits without answering; the next
        // call restarts it (with backoff, replaying initialize), so give each call time.
        let replies = (1...10).map { wire.call("die", #"{"code":3}"#, id: 10 + $0, session: session, timeout: .seconds(60)) }
        let executed = Self.executions(of: "die", in: ledger)
        XCTAssertLessThanOrEqual(executed, 2, "ten calls that each ran and then killed the server: at most the limit ran")
        XCTAssertEqual(executed, 2, "the first two reached the tool")
        for reply in replies.prefix(2) {
            XCTAssertTrue(reply?["error"]?["message"]?.stringValue?.contains("stopped") == true, "\(String(describing: reply))")
        }
        XCTAssertTrue(replies.dropFirst(2).allSatisfy(isRateLimited), "\(replies.dropFirst(2))")

        let outcomes = try await completed(gateway, atLeast: 2)
        XCTAssertEqual(outcomes.map(\.outcome), ["transport_error", "transport_error"])
        XCTAssertTrue(outcomes.allSatisfy { $0.released.isEmpty }, "the quota was kept")
        let decided = try await decisions(gateway)
        XCTAssertEqual(decided.filter { $0 == "limited" }.count, 8)
        try await assertRateWindowsEqualTheLog(gateway)
    }

    // MARK: - Did not run: the quota comes back

    func testACallTheUpstreamRefusedAsNotRunGivesItsQuotaBackAndOtherErrorsKeepIt() async throws {
        let gateway = try await GatewayUnderTest.start(servers: [
            "fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.twoCalls(of: "*"))
        ])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()

        // -32602 (invalid params) and -32601 (method not found) say the call did not run: five calls under a limit of
        // two all reach the upstream, each giving its quota back.
        for (id, code) in [(1, -32602), (2, -32602), (3, -32601), (4, -32602), (5, -32601)] {
            let reply = wire.call("rpc_error", #"{"code":\#(code),"message":"not run"}"#, id: 10 + id, session: session)
            XCTAssertEqual(reply?["error"]?["code"]?.doubleValue, Double(code), "call \(id) reached the upstream: \(String(describing: reply))")
        }
        // Any other JSON-RPC error may follow a call that ran: it keeps its quota, so one more call fits, then none.
        let other = wire.call("rpc_error", #"{"code":-32000,"message":"failed after acting"}"#, id: 20, session: session)
        XCTAssertEqual(other?["error"]?["code"]?.doubleValue, -32000, "\(String(describing: other))")
        XCTAssertEqual(wire.call("echo", #"{"text":"1"}"#, id: 21, session: session)?["result"]?["isError"]?.boolValue, false)
        XCTAssertTrue(isRateLimited(wire.call("echo", #"{"text":"2"}"#, id: 22, session: session)), "the quota of two is used")

        let outcomes = try await completed(gateway, atLeast: 7)
        // An outcome that gives quota back is committed before its answer, so those five are in call order; the two that
        // keep it are recorded beside their answers and may be committed in either order.
        XCTAssertEqual(outcomes.count, 7)
        XCTAssertEqual(outcomes.prefix(5).map(\.errorCode), [-32602, -32602, -32601, -32602, -32601])
        XCTAssertEqual(Set(outcomes.suffix(2).map { $0.errorCode.map(String.init) ?? "none" }), ["-32000", "none"])
        for outcome in outcomes {
            let notRun = [-32601, -32602].contains(outcome.errorCode ?? 0)
            XCTAssertEqual(outcome.released.isEmpty, !notRun, "only the unrun ones gave back: \(String(describing: outcome.errorCode))")
        }
        try await assertRateWindowsEqualTheLog(gateway)
    }

    func testACallWhoseUpstreamCannotBeReachedGivesItsQuotaBack() async throws {
        let ledger = Self.temporaryFile("ledger")
        let upstream = try await Self.httpFixture(["--ledger", ledger.path])
        defer { upstream.program.kill() }
        let gateway = try await GatewayUnderTest.start(servers: ["remote": .http(url: upstream.url, policy: Self.twoCalls(of: "echo"))])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "remote", key: gateway.key)
        let session = try wire.initialize()
        let listed = wire.post(#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: session, accept: "application/json")
        XCTAssertTrue(listed.body.contains("echo"), "the session has the upstream's tool list: \(listed.body)")

        // The upstream goes away: nothing listens on its port any more, so no request can be written to it.
        upstream.program.kill()
        try await Task.sleep(for: .milliseconds(500))
        for id in 1...4 {
            let reply = wire.call("echo", #"{"text":"\#(id)"}"#, id: 10 + id, session: session)
            XCTAssertEqual(reply?["error"]?["code"]?.doubleValue, -32603, "call \(id): \(String(describing: reply))")
        }
        XCTAssertEqual(Self.executions(of: "echo", in: ledger), 0)

        let decided = try await decisions(gateway)
        XCTAssertEqual(decided, ["allow", "allow", "allow", "allow"], "four calls under a limit of two: each gave its quota back")
        let outcomes = try await completed(gateway, atLeast: 4)
        XCTAssertEqual(outcomes.map(\.outcome), ["not_sent", "not_sent", "not_sent", "not_sent"], "the log says they were never sent")
        XCTAssertTrue(outcomes.allSatisfy { !$0.released.isEmpty && $0.error?.isEmpty == false }, "with the reason")
        try await assertRateWindowsEqualTheLog(gateway)
    }
}
