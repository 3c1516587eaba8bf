import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// Reloading the configuration file's agents, reviewers and webhooks in a running `tollgate serve` (real PostgreSQL, the
/// fixture MCP server): on a file change and on SIGHUP, with sessions open and calls held; a broken file keeps what is
/// in force.
final class ConfigReloadTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    static let policy = """
        version: "1"
        default: allow
        tools:
          transfer: {action: require_approval, reason: money moves, approval: {hold: 30s, timeout: 1h}}
        """

    struct Fixture {
        let gateway: GatewayUnderTest
        let ledger: URL

        /// How many times `transfer` really ran with this amount.
        func runs(amount: Double) -> Int {
            let text = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }.filter {
                $0["tool"]?.stringValue == "transfer" && $0["arguments"]?["amount"]?.doubleValue == amount
            }.count
        }

        func wire(_ agent: String) -> Wire { Wire(port: gateway.port, server: "pay", key: gateway.keys[agent]!) }

        /// Rewrites the configuration file (atomically, as operators are told to).
        func rewrite(_ change: (String) -> String) throws {
            let text = try String(contentsOfFile: gateway.configPath, encoding: .utf8)
            try change(text).write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        }

        /// The configuration without the lines that mention `needle` (an agent's or reviewer's entry).
        func remove(_ needle: String) throws {
            try rewrite { text in
                text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains(needle) }.joined(separator: "\n")
            }
        }

        /// Waits until the log contains `text` `count` times; fails the test if it does not within `timeout`.
        func expectLog(
            _ text: String, count: Int = 1, timeout: Duration = .seconds(10), _ message: String = "", file: StaticString = #filePath,
            line: UInt = #line
        ) async {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if gateway.log.components(separatedBy: text).count - 1 >= count { return }
                try? await Task.sleep(for: .milliseconds(50))
            }
            XCTFail("the log does not say \(text) \(count) times: \(message) \(gateway.log.suffix(3000))", file: file, line: line)
        }
    }

    func start(reviewers: [String: String] = ["alice": "reviewer", "bob": "reviewer"], extraConfig: String = "") async throws -> Fixture {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-reload-\(UUID().uuidString.prefix(8)).jsonl")
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "pay": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path],
                    policy: Self.policy)
            ],
            reviewers: reviewers, extraConfig: extraConfig)
        return Fixture(gateway: gateway, ledger: ledger)
    }

    static func echo(_ text: String, id: Int) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"echo","arguments":{"text":"\#(text)"}}}"#
    }

    static func echoed(_ response: HTTPProbe.Response) -> String? {
        (try? JSONValue(parsing: response.body))?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue
    }

    /// A `transfer` sent in the background: held for approval until decided (or its session ends).
    static func heldTransfer(_ wire: Wire, amount: Double, id: Int, session: String) -> Task<JSONValue?, Never> {
        Task.detached { wire.call("transfer", #"{"amount":\#(amount),"to":"bob"}"#, id: id, session: session, timeout: .seconds(60)) }
    }

    // MARK: - Agents

    func testAnAgentRemovedWhileItsSessionIsOpenIsRefusedWithinThreeSecondsAndOthersGoOn() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let (a, b) = (fixture.wire("agent-a"), fixture.wire("agent-b"))
        let (sessionA, sessionB) = (try a.initialize(), try b.initialize())
        XCTAssertEqual(Self.echoed(b.post(Self.echo("b before", id: 2), session: sessionB)), "b before")
        // Each agent has a call held for approval while the file changes.
        let heldA = Self.heldTransfer(a, amount: 101, id: 3, session: sessionA)
        let heldB = Self.heldTransfer(b, amount: 202, id: 3, session: sessionB)
        let pending = await fixture.gateway.awaitApprovals(count: 2, as: "alice")
        XCTAssertEqual(pending.count, 2, fixture.gateway.log)

        try fixture.remove("id: agent-b,")
        let changed = ContinuousClock.now
        var refused: HTTPProbe.Response?
        var id = 10
        // agent-a's session keeps answering while agent-b's is refused.
        while ContinuousClock.now - changed < .seconds(6) {
            id += 1
            XCTAssertEqual(Self.echoed(a.post(Self.echo("a \(id)", id: id), session: sessionA)), "a \(id)", "agent-a is not disturbed")
            let response = b.post(Self.echo("b \(id)", id: id), session: sessionB)
            if response.status != 200 {
                refused = response
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let elapsed = ContinuousClock.now - changed
        XCTAssertEqual(refused?.status, 401, "\(String(describing: refused?.body)) \(fixture.gateway.log.suffix(3000))")
        XCTAssertLessThan(elapsed, .seconds(3), "refused within 3 s of the change")
        print("agent removed: refused \(elapsed) after the file changed")
        XCTAssertEqual(b.post(#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#).status, 401, "and cannot start a new session")

        // agent-b's held call was answered when its session ended; it never runs, whatever is decided.
        let answerB = await heldB.value
        XCTAssertEqual(answerB?["error"]?["message"]?.stringValue, "Session terminated", "\(String(describing: answerB))")
        await fixture.expectLog("ending a session: its agent was removed or its key changed")

        // agent-a's held call is still held: approved, it runs once and agent-a gets its result on the same session.
        let requestA = try XCTUnwrap(pending.first { $0["agent"]?.stringValue == "agent-a" }?["id"]?.stringValue)
        XCTAssertEqual(fixture.gateway.api("POST", "/v1/approvals/\(requestA)/approve", as: "alice", body: "{}").status, 200)
        let answerA = await heldA.value
        XCTAssertEqual(answerA?["result"]?["structuredContent"]?["status"]?.stringValue, "transferred", "\(String(describing: answerA))")
        XCTAssertEqual(fixture.runs(amount: 101), 1)
        XCTAssertEqual(fixture.runs(amount: 202), 0, "the removed agent's held call never ran")
        XCTAssertEqual(Self.echoed(a.post(Self.echo("a after", id: 99), session: sessionA)), "a after")
        XCTAssertTrue(fixture.gateway.log.contains("configuration reloaded"), fixture.gateway.log)
        XCTAssertTrue(fixture.gateway.log.contains("removed agent-b"), fixture.gateway.log)
    }

    func testARemovedAgentsHeldStatelessCallIsCancelledAndAnotherAgentsIsNot() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let meta =
            #""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"wire","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}"#
        func transfer(_ wire: Wire, _ amount: Double) -> Task<HTTPProbe.Response, Never> {
            Task.detached {
                wire.post(
                    #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"transfer","arguments":{"amount":\#(amount),"to":"bob"},\#(meta)}}"#,
                    accept: "application/json", extra: [("MCP-Protocol-Version", "2026-07-28")], timeout: .seconds(60))
            }
        }
        let heldA = transfer(fixture.wire("agent-a"), 303)
        let heldB = transfer(fixture.wire("agent-b"), 404)
        let pending = await fixture.gateway.awaitApprovals(count: 2, as: "alice")
        XCTAssertEqual(pending.count, 2, fixture.gateway.log.suffix(3000).description)

        try fixture.remove("id: agent-b,")
        let changed = ContinuousClock.now
        let answerB = await heldB.value
        XCTAssertLessThan(ContinuousClock.now - changed, .seconds(3), "answered within 3 s of the change")
        let resultB = (try? JSONValue(parsing: answerB.body))?["result"]
        XCTAssertEqual(resultB?["isError"]?.boolValue, true, "\(answerB.status) \(answerB.body)")
        XCTAssertTrue(
            resultB?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("was cancelled while it waited for approval") == true, answerB.body
        )
        for approval in pending {
            let id = approval["id"]?.stringValue ?? ""
            XCTAssertEqual(fixture.gateway.api("POST", "/v1/approvals/\(id)/approve", as: "alice", body: "{}").status, 200)
        }
        let answerA = await heldA.value
        XCTAssertEqual(
            (try? JSONValue(parsing: answerA.body))?["result"]?["structuredContent"]?["status"]?.stringValue, "transferred", answerA.body)
        XCTAssertEqual(fixture.runs(amount: 303), 1)
        try await Task.sleep(for: .seconds(1))
        XCTAssertEqual(fixture.runs(amount: 404), 0, "the removed agent's call never runs, even approved")
    }

    func testARevokedKeyIsRefusedAfterReloadAndTheNewKeyWorks() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let old = fixture.wire("agent-a")
        let session = try old.initialize()
        XCTAssertEqual(Self.echoed(old.post(Self.echo("old key", id: 2), session: session)), "old key")
        let other = fixture.wire("agent-b")
        let otherSession = try other.initialize()

        let newKey = AgentKey.generate()
        let oldHash = AgentKey.hash(fixture.gateway.keys["agent-a"]!)
        try fixture.rewrite { $0.replacingOccurrences(of: oldHash, with: AgentKey.hash(newKey)) }
        let changed = ContinuousClock.now
        var status = 200
        while ContinuousClock.now - changed < .seconds(6), status == 200 {
            status = old.post(Self.echo("old key", id: 3), session: session).status
            if status == 200 { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertEqual(status, 401, fixture.gateway.log.suffix(3000).description)
        XCTAssertLessThan(ContinuousClock.now - changed, .seconds(3))
        // Raw bytes, the scheme in another case and blanks around the old key: still no agent.
        let raw = HTTPProbe.raw(
            port: fixture.gateway.port,
            request: Array(
                ("POST /mcp/pay HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                    + "Authorization: bEaReR \t\(fixture.gateway.keys["agent-a"]!) \r\nContent-Length: 40\r\n\r\n"
                    + #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).utf8))
        XCTAssertEqual(raw?.status, 401, raw?.body ?? "no answer")

        let renewed = Wire(port: fixture.gateway.port, server: "pay", key: newKey)
        XCTAssertEqual(renewed.post(Self.echo("x", id: 4), session: session).status, 404, "the old key's session ended with it")
        let fresh = try renewed.initialize()
        XCTAssertEqual(Self.echoed(renewed.post(Self.echo("new key", id: 5), session: fresh)), "new key")
        XCTAssertEqual(Self.echoed(other.post(Self.echo("untouched", id: 6), session: otherSession)), "untouched", "agent-b's session goes on")
        XCTAssertTrue(fixture.gateway.log.contains("changed agent-a"), fixture.gateway.log)
    }

    // MARK: - Reviewers

    func testARemovedReviewerCanNoLongerDecide() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let a = fixture.wire("agent-a")
        let session = try a.initialize()
        let held = Self.heldTransfer(a, amount: 7, id: 2, session: session)
        let pending = await fixture.gateway.awaitApprovals(as: "bob")
        let request = try XCTUnwrap(pending.first?["id"]?.stringValue, fixture.gateway.log)
        // bob also has the reviewer page open.
        var page = ReviewerPageTests.Browser(port: fixture.gateway.port)
        XCTAssertEqual(page.signIn(fixture.gateway.tokens["bob"]!).status, 303)
        XCTAssertEqual(page.get("/ui/approvals/\(request)").status, 200)

        try fixture.remove("id: bob,")
        let changed = ContinuousClock.now
        var status = 200
        while ContinuousClock.now - changed < .seconds(6), status == 200 {
            status = fixture.gateway.api("GET", "/v1/approvals?status=pending", as: "bob").status
            if status == 200 { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertEqual(status, 401, fixture.gateway.log.suffix(3000).description)
        XCTAssertLessThan(ContinuousClock.now - changed, .seconds(3))
        let denied = fixture.gateway.api("POST", "/v1/approvals/\(request)/deny", as: "bob", body: #"{"reason":"no"}"#)
        XCTAssertEqual(denied.status, 401, denied.text)
        // The page's session ends at its next request, and bob's token no longer signs in.
        let signedOut = page.get("/ui/approvals/\(request)")
        XCTAssertNotEqual(signedOut.status, 200, signedOut.body)
        XCTAssertFalse(signedOut.body.contains("name=\"csrf\"") && signedOut.body.contains("/deny"), "no deny form for bob")
        XCTAssertTrue(fixture.gateway.log.contains("a session's reviewer is no longer configured with its token"), fixture.gateway.log)
        var again = ReviewerPageTests.Browser(port: fixture.gateway.port)
        XCTAssertEqual(again.signIn(fixture.gateway.tokens["bob"]!).status, 401)
        XCTAssertEqual(fixture.runs(amount: 7), 0)
        XCTAssertEqual(fixture.gateway.api("POST", "/v1/approvals/\(request)/approve", as: "alice", body: "{}").status, 200, "alice still decides")
        let answer = await held.value
        XCTAssertEqual(answer?["result"]?["structuredContent"]?["status"]?.stringValue, "transferred", "\(String(describing: answer))")
        XCTAssertEqual(fixture.runs(amount: 7), 1)
    }

    // MARK: - Webhooks

    func testAWebhookAddedIsToldAndOneRemovedIsNot() async throws {
        let secret = WebhookSecret.generate()
        let receiver = try await WebhookTests.Receiver(secrets: [secret], behaviour: ["--reject-unverified"])
        defer { receiver.stop() }
        let fixture = try await start(reviewers: ["alice": "reviewer"])
        defer { fixture.gateway.stop() }
        let a = fixture.wire("agent-a")
        let session = try a.initialize()
        let entry =
            "webhooks:\n  - {name: added, url: \"\(receiver.url)\", secrets: [\"\(secret.text)\"], events: [approval.requested], coalesce: off}\n"

        try fixture.rewrite { $0 + entry }
        await fixture.expectLog("webhooks=added added")
        let first = Self.heldTransfer(a, amount: 1, id: 2, session: session)
        let told = await receiver.await(1)
        XCTAssertEqual(told.count, 1, fixture.gateway.log.suffix(3000).description)
        XCTAssertEqual(told.first?["verified"]?.boolValue, true, "\(told)")

        try fixture.rewrite { $0.replacingOccurrences(of: entry, with: "") }
        await fixture.expectLog("webhooks=removed added")
        let second = Self.heldTransfer(a, amount: 2, id: 3, session: session)
        let both = await fixture.gateway.awaitApprovals(count: 2, as: "alice")
        XCTAssertEqual(both.count, 2)
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(receiver.requests.count, 1, "the removed endpoint is told nothing more: \(receiver.requests)")
        for approval in both {
            _ = fixture.gateway.api("POST", "/v1/approvals/\(approval["id"]?.stringValue ?? "")/deny", as: "alice", body: #"{"reason":"test"}"#)
        }
        _ = await first.value
        _ = await second.value
    }

    // MARK: - Broken files, restart-only changes and SIGHUP

    func testABrokenFileKeepsTheConfigurationInForceAndLogsEveryError() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let b = fixture.wire("agent-b")
        let session = try b.initialize()
        let good = try String(contentsOfFile: fixture.gateway.configPath, encoding: .utf8)
        let withoutB = good.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("id: agent-b,") }.joined(separator: "\n")
        let agentA = String(try XCTUnwrap(good.split(separator: "\n").first { $0.contains("id: agent-a,") }))
        let duplicatedHash = AgentKey.hash(fixture.gateway.keys["agent-a"]!)
        let broken: [(what: String, text: String, errors: [String])] = [
            ("malformed YAML", withoutB + "\nlimits: {max_sessions: [\n", ["errors"]),
            (
                "unknown keys", withoutB + "\nlimitz: {}\nlogging: {levle: debug}\n",
                ["configuration file has 2 errors", "limitz", "levle"]
            ),
            (
                "a duplicate agent",
                withoutB.replacingOccurrences(
                    of: agentA, with: agentA + "\n" + agentA.replacingOccurrences(of: duplicatedHash, with: AgentKey.hash(AgentKey.generate()))),
                ["agents[1].id", "agent-a"]
            ),
            ("an oversized file", withoutB + "\n#" + String(repeating: "x", count: 1 << 20) + "\n", ["more than 1048576 bytes"]),
        ]
        for (index, file) in broken.enumerated() {
            try file.text.write(toFile: fixture.gateway.configPath, atomically: true, encoding: .utf8)
            await fixture.expectLog("keeping the agents, reviewers and webhooks in force", count: index + 1, file.what)
            let line = fixture.gateway.log.split(separator: "\n").last { $0.contains("keeping the agents") }.map(String.init) ?? ""
            for error in file.errors {
                XCTAssertTrue(line.contains(error), "\(file.what): the log names \(error): \(line.prefix(2000))")
            }
            XCTAssertEqual(Self.echoed(b.post(Self.echo(file.what, id: 10 + index), session: session)), file.what, "\(file.what): agent-b stays")
        }
        XCTAssertTrue(fixture.gateway.process.isRunning)
        XCTAssertFalse(fixture.gateway.log.contains("configuration reloaded"), "nothing broken was applied")

        // A valid file that also changes what only a restart applies: agents are applied, the rest is named.
        try (withoutB + "limits: {max_sessions: 7}\nlisten: 127.0.0.1:1\n").write(
            toFile: fixture.gateway.configPath, atomically: true, encoding: .utf8)
        await fixture.expectLog("configuration reloaded")
        XCTAssertEqual(b.post(Self.echo("gone", id: 50), session: session).status, 401)
        let warning = fixture.gateway.log.split(separator: "\n").last { $0.contains("need a restart") }.map(String.init) ?? ""
        XCTAssertTrue(warning.contains("listen, limits"), warning)
        XCTAssertEqual(HTTPProbe.request(port: fixture.gateway.port, method: "GET", path: "/readyz")?.status, 200, "still serving where it was")
    }

    func testSIGHUPReloadsAFileWhoseSizeAndTimeLookUnchanged() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let a = fixture.wire("agent-a")
        let session = try a.initialize()
        // A whole-second modification time survives setAttributes exactly: let the poll record it, then change the
        // content behind it (a new key of the same length: the same size).
        let path = fixture.gateway.configPath
        let pinned = Date(timeIntervalSince1970: 1_700_000_000)
        try FileManager.default.setAttributes([.modificationDate: pinned], ofItemAtPath: path)
        try await Task.sleep(for: .seconds(2))
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        let oldHash = AgentKey.hash(fixture.gateway.keys["agent-a"]!)
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: oldHash, with: AgentKey.hash(AgentKey.generate()))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
        try FileManager.default.setAttributes([.modificationDate: pinned], ofItemAtPath: path)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size)
        try await Task.sleep(for: .seconds(3))
        XCTAssertEqual(Self.echoed(a.post(Self.echo("unseen", id: 2), session: session)), "unseen", "the poll does not see the change")

        fixture.gateway.process.signal(SIGHUP)
        let signalled = ContinuousClock.now
        var status = 200
        while ContinuousClock.now - signalled < .seconds(6), status == 200 {
            status = a.post(Self.echo("after", id: 3), session: session).status
            if status == 200 { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertEqual(status, 401, fixture.gateway.log.suffix(3000).description)
        XCTAssertLessThan(ContinuousClock.now - signalled, .seconds(3))
        XCTAssertTrue(fixture.gateway.process.isRunning)
    }
}
