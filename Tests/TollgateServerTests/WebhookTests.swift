import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// Webhooks end to end: approval requests made through the gateway by the Python SDK client, delivered to real HTTP
/// receivers that check every signature with the official Standard Webhooks library.
final class WebhookTests: XCTestCase {
    /// A receiver process (Tests/Peers/webhook_receiver.py) and what it logged.
    final class Receiver {
        let process: RunningProgram
        let port: Int
        let log: URL

        init(secrets: [WebhookSecret], behaviour: [String] = []) async throws {
            log = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-receiver-\(UUID().uuidString.prefix(8)).jsonl")
            var arguments = [Peers.root.appendingPathComponent("Tests/Peers/webhook_receiver.py").path, "--port", "0", "--log", log.path]
            for secret in secrets { arguments += ["--secret", secret.text] }
            process = try RunningProgram(try Peers.python2(), arguments + behaviour)
            let deadline = ContinuousClock.now + .seconds(20)
            var port: Int?
            while ContinuousClock.now < deadline, port == nil {
                port = process.standardOutput.split(separator: "\n").first { $0.hasPrefix("READY ") }.flatMap { Int($0.dropFirst(6)) }
                if port == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            guard let port else { throw RunningProgram.Failure(description: "the receiver did not start: \(process.standardError)") }
            self.port = port
        }

        var url: String { "http://127.0.0.1:\(port)/hook" }

        var requests: [JSONValue] {
            ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        }

        /// Waits until `count` requests have arrived.
        func await(_ count: Int, timeout: Duration = .seconds(30)) async -> [JSONValue] {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let seen = requests
                if seen.count >= count { return seen }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return requests
        }

        func stop() { process.kill() }
    }

    static let policy = """
        version: "1"
        default: allow
        tools:
          transfer: {action: require_approval, approval: {hold: 1s, timeout: 1h}}
        """

    func start(_ webhooks: String) async throws -> GatewayUnderTest {
        try await GatewayUnderTest.start(
            servers: ["pay": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)],
            reviewers: ["alice": "reviewer"], extraConfig: "public_url: https://tollgate.example.com\nwebhooks:\n" + webhooks)
    }

    /// One held call (answered "pending" after a second): an `approval.requested` event.
    func requestApproval(_ gateway: GatewayUnderTest, amount: Double = 5) throws {
        let run = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("pay"), key: gateway.key,
            steps: [["op": "call_tool", "name": "transfer", "arguments": ["amount": .number(amount), "to": "bob"], "timeout": 30]])
        XCTAssertEqual(run.step(0)?["result"]?["structuredContent"]?["status"]?.stringValue, "pending_approval", run.description)
    }

    func testDeliveriesVerifyWithTheOfficialLibraryThroughARotationAndSlackGetsItsFormat() async throws {
        let current = WebhookSecret.generate()
        let previous = WebhookSecret.generate()
        // The receiver still knows only the previous secret: the gateway signs with both while it rotates.
        let generic = try await Receiver(secrets: [previous], behaviour: ["--reject-unverified"])
        let slack = try await Receiver(secrets: [current])
        defer {
            generic.stop()
            slack.stop()
        }
        let gateway = try await start(
            """
              - {name: reviewers, url: "\(generic.url)", secrets: ["\(current.text)", "\(previous.text)"]}
              - {name: chat, url: "\(slack.url)", secrets: ["\(current.text)"], format: slack, events: [approval.requested], tools: ["trans*"]}
            """)
        defer { gateway.stop() }
        try requestApproval(gateway)
        let requested = await generic.await(1)
        XCTAssertEqual(requested.count, 1, gateway.log)
        XCTAssertEqual(requested.first?["verified"]?.boolValue, true, "\(requested)")
        XCTAssertEqual(requested.first?["status"]?.doubleValue, 204)
        let body = try JSONValue(parsing: requested.first?["body"]?.stringValue ?? "")
        XCTAssertEqual(body["type"]?.stringValue, "approval.requested")
        let id = try XCTUnwrap(body["data"]?["id"]?.stringValue)
        XCTAssertEqual(body["data"]?["tool"]?.stringValue, "transfer")
        XCTAssertEqual(body["data"]?["links"]?["approve"]?.stringValue, "https://tollgate.example.com/v1/approvals/\(id)/approve")
        XCTAssertEqual(body["data"]?["links"]?["page"]?.stringValue, "https://tollgate.example.com/ui/approvals/\(id)")

        XCTAssertEqual(gateway.api("POST", "/v1/approvals/\(id)/approve", as: "alice", body: "{}").status, 200)
        let both = await generic.await(2)
        XCTAssertEqual(both.count, 2)
        let decided = try JSONValue(parsing: both.last?["body"]?.stringValue ?? "")
        XCTAssertEqual(decided["type"]?.stringValue, "approval.decided")
        XCTAssertEqual(decided["data"]?["status"]?.stringValue, "approved")
        XCTAssertNotEqual(both[0]["headers"]?["webhook-id"]?.stringValue, both[1]["headers"]?["webhook-id"]?.stringValue)
        XCTAssertEqual(both[1]["verified"]?.boolValue, true)

        // The Slack endpoint: only approval.requested, as an incoming-webhook message with the links.
        let chat = await slack.await(1)
        XCTAssertEqual(chat.count, 1)
        XCTAssertEqual(chat.first?["verified"]?.boolValue, true)
        let message = try JSONValue(parsing: chat.first?["body"]?.stringValue ?? "")
        XCTAssertTrue(message["text"]?.stringValue?.contains("agent-a wants to call pay/transfer") == true, "\(message)")
        XCTAssertTrue(message.canonicalJSON.contains("tollgate approvals approve \(id)"), message.canonicalJSON)
        XCTAssertTrue(message.canonicalJSON.contains("<https://tollgate.example.com/ui/approvals/\(id)|"), "the request's page: \(message)")
        let blocks = message["blocks"]?.arrayValue ?? []
        XCTAssertFalse(blocks.contains { $0["type"]?.stringValue == "actions" }, "no buttons without a `slack` app to receive them")
        try await Task.sleep(for: .milliseconds(700))
        XCTAssertEqual(slack.requests.count, 1, "the decision is not an event this endpoint asked for")

        // `tollgate webhooks verify` accepts the captured delivery, and refuses it altered.
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-capture-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: capture, withIntermediateDirectories: true)
        let headers = (both[0]["headers"]?.objectValue ?? [:]).map { "\($0.key): \($0.value.stringValue ?? "")" }.joined(separator: "\n")
        try headers.write(to: capture.appendingPathComponent("headers"), atomically: true, encoding: .utf8)
        try (both[0]["body"]?.stringValue ?? "").write(to: capture.appendingPathComponent("body"), atomically: true, encoding: .utf8)
        try ((both[0]["body"]?.stringValue ?? "") + " ").write(to: capture.appendingPathComponent("altered"), atomically: true, encoding: .utf8)
        func verify(_ body: String, _ secret: WebhookSecret) throws -> (status: Int32, stdout: String, stderr: String) {
            try RunningProgram.run(
                RunningProgram.tollgateBinary,
                [
                    "webhooks", "verify", "--secret", secret.text, "--headers", capture.appendingPathComponent("headers").path, "--body",
                    capture.appendingPathComponent(body).path,
                ])
        }
        XCTAssertEqual(try verify("body", previous).status, 0)
        XCTAssertEqual(try verify("body", current).status, 0)
        let altered = try verify("altered", current)
        XCTAssertEqual(altered.status, 1)
        XCTAssertTrue(altered.stderr.contains("NOT VERIFIED"), altered.stderr)
        XCTAssertEqual(try verify("body", WebhookSecret.generate()).status, 1)

        // `tollgate webhooks test` sends a signed sample now.
        let test = try RunningProgram.run(RunningProgram.tollgateBinary, ["webhooks", "test", "reviewers", "--config", gateway.configPath])
        XCTAssertEqual(test.status, 0, test.stdout + test.stderr)
        let sample = await generic.await(3)
        XCTAssertEqual(sample.last?["verified"]?.boolValue, true)
        XCTAssertTrue(sample.last?["headers"]?["webhook-id"]?.stringValue?.hasPrefix("msg_test_") == true)
    }

    func testAFailingReceiverGetsTheSameIdUntilItSucceedsOnce() async throws {
        let secret = WebhookSecret.generate()
        let receiver = try await Receiver(secrets: [secret], behaviour: ["--fail-first", "3"])
        defer { receiver.stop() }
        let gateway = try await start(
            "  - {name: flaky, url: \"\(receiver.url)\", secrets: [\"\(secret.text)\"], events: [approval.requested], backoff: 1s}\n")
        defer { gateway.stop() }
        try requestApproval(gateway)
        let requests = await receiver.await(4, timeout: .seconds(40))
        XCTAssertEqual(requests.map { $0["status"]?.doubleValue ?? 0 }, [500, 500, 500, 204], gateway.log)
        XCTAssertEqual(Set(requests.compactMap { $0["headers"]?["webhook-id"]?.stringValue }).count, 1, "one id on every attempt")
        XCTAssertTrue(requests.allSatisfy { $0["verified"]?.boolValue == true })
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(receiver.requests.count, 4, "delivered once, then never again")
        let listed = try RunningProgram.run(
            RunningProgram.tollgateBinary,
            ["webhooks", "deliveries", "--format", "json", "--database", gateway.database.connectionString, "--log-level", "warning"])
        let delivery = try XCTUnwrap(try JSONValue(parsing: listed.stdout).arrayValue?.first, listed.stderr)
        XCTAssertEqual(delivery["status"]?.stringValue, "delivered")
        XCTAssertEqual(delivery["attempts"]?.doubleValue, 4)
        XCTAssertEqual(delivery["attempt_log"]?.arrayValue?.map { $0["status_code"]?.doubleValue ?? 0 }, [500, 500, 500, 204])
        XCTAssertTrue(delivery["attempt_log"]?.arrayValue?.allSatisfy { ($0["latency_ms"]?.doubleValue ?? -1) >= 0 } == true)
    }

    func testAHangingEndpointDoesNotDelayAnother() async throws {
        let secret = WebhookSecret.generate()
        let hanging = try await Receiver(secrets: [secret], behaviour: ["--hang"])
        let healthy = try await Receiver(secrets: [secret])
        defer {
            hanging.stop()
            healthy.stop()
        }
        let gateway = try await start(
            """
              - {name: stuck, url: "\(hanging.url)", secrets: ["\(secret.text)"], timeout: 20s, coalesce: off}
              - {name: fine, url: "\(healthy.url)", secrets: ["\(secret.text)"], coalesce: off}
            """)
        defer { gateway.stop() }
        // One agent's three requests, each told on its own (`coalesce: off`; AgentBudgetTests holds bursts).
        for amount in [1.0, 2.0, 3.0] {
            let asked = Date()
            try requestApproval(gateway, amount: amount)
            let received = await healthy.await(Int(amount), timeout: .seconds(10))
            XCTAssertEqual(received.count, Int(amount), gateway.log)
            // Held a second, then delivered within moments, while the other endpoint hangs on its first delivery.
            XCTAssertLessThan((received.last?["time"]?.doubleValue ?? .infinity) - asked.timeIntervalSince1970, 4)
        }
        XCTAssertEqual(hanging.requests.count, 1, "the stuck endpoint is still on its first attempt")
    }

    func testARestartInTheMiddleOfTheBackoffResumesTheDelivery() async throws {
        let secret = WebhookSecret.generate()
        let receiver = try await Receiver(secrets: [secret], behaviour: ["--fail-first", "1"])
        defer { receiver.stop() }
        let gateway = try await start(
            "  - {name: later, url: \"\(receiver.url)\", secrets: [\"\(secret.text)\"], events: [approval.requested], backoff: 3s}\n")
        defer { gateway.stop() }
        try requestApproval(gateway)
        let first = await receiver.await(1)
        XCTAssertEqual(first.first?["status"]?.doubleValue, 500)
        try await gateway.killAndRestart()
        let after = await receiver.await(2, timeout: .seconds(30))
        XCTAssertEqual(after.count, 2, gateway.log)
        XCTAssertEqual(after.last?["status"]?.doubleValue, 204)
        XCTAssertEqual(after[0]["headers"]?["webhook-id"]?.stringValue, after[1]["headers"]?["webhook-id"]?.stringValue)
    }
}
