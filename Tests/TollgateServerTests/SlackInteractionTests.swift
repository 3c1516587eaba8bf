import Crypto
import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// Slack's buttons end to end: a call held by the official Python SDK client through `tollgate serve`, the `slack`
/// message with its buttons delivered to a loopback stand-in for Slack (Tests/Peers/slack_fake.py: Slack itself is
/// unreachable from here), and interaction payloads shaped and signed as Slack documents them, sent with raw HTTP.
final class SlackInteractionTests: XCTestCase {
    static let signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"
    static let botToken = "xoxb-17-42-tollgatetest"
    /// Reviewer id → (role, Slack member id).
    static let reviewers: [(id: String, role: String, slack: String)] = [
        ("alice", "reviewer", "U0ALICE001"), ("bob", "reviewer", "U0BOB00001"), ("carol", "auditor", "U0CAROL001"),
        ("agent-a", "reviewer", "U0AGENTA01"),
    ]

    /// The stand-in for Slack's Web API, the response URLs and the incoming webhook.
    final class FakeSlack {
        let process: RunningProgram
        let port: Int
        let log: URL

        init(arguments: [String] = []) async throws {
            log = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-slack-\(UUID().uuidString.prefix(8)).jsonl")
            process = try RunningProgram(
                try Peers.python2(),
                [Peers.root.appendingPathComponent("Tests/Peers/slack_fake.py").path, "--port", "0", "--log", log.path] + arguments)
            let deadline = ContinuousClock.now + .seconds(20)
            var port: Int?
            while ContinuousClock.now < deadline, port == nil {
                port = process.standardOutput.split(separator: "\n").first { $0.hasPrefix("READY ") }.flatMap { Int($0.dropFirst(6)) }
                if port == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            guard let port else { throw RunningProgram.Failure(description: "the fake Slack did not start: \(process.standardError)") }
            self.port = port
        }

        var base: String { "http://127.0.0.1:\(port)" }

        var requests: [JSONValue] {
            ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        }

        /// The requests to `path` once there are `count`, or what there is after `timeout`.
        func await(_ path: String, count: Int = 1, timeout: Duration = .seconds(20)) async -> [JSONValue] {
            let deadline = ContinuousClock.now + timeout
            while true {
                let seen = requests.filter { $0["path"]?.stringValue == path }
                if seen.count >= count || ContinuousClock.now >= deadline { return seen }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }

        func stop() { process.kill() }
    }

    struct Fixture {
        let gateway: GatewayUnderTest
        let slack: FakeSlack
        let ledger: URL
        /// Reviewer id → API token.
        let tokens: [String: String]

        func runs(amount: Double) -> Int {
            let text = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }.filter {
                $0["tool"]?.stringValue == "transfer" && $0["arguments"]?["amount"]?.doubleValue == amount
            }.count
        }

        func stop() {
            gateway.stop()
            slack.stop()
        }

        func approval(_ id: String) -> JSONValue? {
            gateway.api("GET", "/v1/approvals/\(id)", as: tokens["carol"]).body
        }
    }

    func start(hold: String = "30s", quorum: Int = 1, slackArguments: [String] = []) async throws -> Fixture {
        let slack = try await FakeSlack(arguments: slackArguments)
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-slack-ledger-\(UUID().uuidString.prefix(8)).jsonl")
        var tokens: [String: String] = [:]
        var yaml = "reviewers:\n"
        for reviewer in Self.reviewers {
            let token = AgentKey.generate()
            tokens[reviewer.id] = token
            yaml += "  - {id: \(reviewer.id), role: \(reviewer.role), token_hash: \"\(AgentKey.hash(token))\", slack_user_id: \(reviewer.slack)}\n"
        }
        yaml += """
            public_url: https://tollgate.example.com
            slack:
              signing_secret: "${SLACK_SIGNING_SECRET}"
              bot_token: "${SLACK_BOT_TOKEN}"
              api_url: \(slack.base)/api
              response_url_prefix: \(slack.base)/hooks/
            webhooks:
              - {name: chat, url: "\(slack.base)/incoming", secrets: ["\(WebhookSecret.generate().text)"], format: slack, coalesce: "off"}

            """
        let policy = """
            version: "1"
            default: allow
            tools:
              transfer: {action: require_approval, reason: money moves, approval: {hold: \(hold), timeout: 1h, quorum: \(quorum)}}
            """
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "pay": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path], policy: policy)
            ],
            extraConfig: yaml, environment: ["SLACK_SIGNING_SECRET": Self.signingSecret, "SLACK_BOT_TOKEN": Self.botToken])
        return Fixture(gateway: gateway, slack: slack, ledger: ledger, tokens: tokens)
    }

    /// Runs a transfer in the background (held while the test decides).
    func transfer(_ fixture: Fixture, _ amount: Double) -> Task<Peers.ClientRun, any Error> {
        let python = Result { try Peers.python2() }
        let url = fixture.gateway.url("pay")
        let key = fixture.gateway.key
        let steps: JSONValue = [["op": "call_tool", "name": "transfer", "arguments": ["amount": .number(amount), "to": "bob"], "timeout": 60]]
        return Task.detached { try Peers.runClient(python: try python.get(), url: url, key: key, steps: steps) }
    }

    /// The id of the one pending request, once its Slack message (with its buttons) was delivered.
    func pending(_ fixture: Fixture) async throws -> String {
        let pending = await fixture.gateway.awaitApprovals(as: fixture.tokens["carol"]!)
        return try XCTUnwrap(pending.first?["id"]?.stringValue, fixture.gateway.log)
    }

    // MARK: - Payloads as Slack sends them

    static func click(
        _ action: String, id: String, user: String, responseURL: String?, trigger: String = "13345224609.738474920.8088930838d88f008e0"
    )
        -> JSONValue
    {
        var payload: [String: JSONValue] = [
            "type": "block_actions", "user": ["id": .string(user), "username": "someone", "team_id": "T0TEAM0001"],
            "api_app_id": "A0APP00001", "team": ["id": "T0TEAM0001", "domain": "example"], "container": ["type": "message"],
            "trigger_id": .string(trigger),
            "actions": [
                [
                    "type": "button", "block_id": "tollgate_decide", "action_id": .string(action), "value": .string(id),
                    "text": ["type": "plain_text", "text": "Approve"], "action_ts": "1733612345.123456",
                ]
            ],
        ]
        if let responseURL { payload["response_url"] = .string(responseURL) }
        return .object(payload)
    }

    static func submission(id: String, user: String, responseURL: String, reason: String?) -> JSONValue {
        var value: [String: JSONValue] = ["type": "plain_text_input"]
        if let reason { value["value"] = .string(reason) }
        return [
            "type": "view_submission", "team": ["id": "T0TEAM0001"], "user": ["id": .string(user)], "api_app_id": "A0APP00001",
            "view": [
                "id": "V0FAKE", "type": "modal", "callback_id": "tollgate_deny",
                "private_metadata": .string(JSONValue.object(["approval": .string(id), "response_url": .string(responseURL)]).canonicalJSON),
                "state": ["values": ["reason": ["reason": .object(value)]]],
            ],
        ]
    }

    /// `payload=<the JSON, percent-encoded>` as Slack's form body.
    static func form(_ payload: JSONValue) -> [UInt8] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return Array(("payload=" + payload.canonicalJSON.addingPercentEncoding(withAllowedCharacters: allowed)!).utf8)
    }

    /// `X-Slack-Signature` as Slack documents it, computed here independently of the gateway's code.
    static func sign(_ body: [UInt8], timestamp: String, secret: String = signingSecret) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("v0:\(timestamp):".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return "v0=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    struct Sent {
        var status: Int
        var body: String
        var headers: [(String, String)]
        var bytes: [UInt8]
        var seconds: Double
    }

    /// Posts `body` to the interactions endpoint, signed now (or as `timestamp`, `signature` say; nil leaves the header out).
    @discardableResult
    func send(
        _ fixture: Fixture, _ body: [UInt8], timestamp: String? = nil, signature: String?? = .none,
        contentType: String = "application/x-www-form-urlencoded"
    ) -> Sent {
        let stamp = timestamp ?? String(Int(Date().timeIntervalSince1970))
        var headers: [(String, String)] = [("Content-Type", contentType), ("X-Slack-Request-Timestamp", stamp)]
        switch signature {
        case .none: headers.append(("X-Slack-Signature", Self.sign(body, timestamp: stamp)))
        case .some(.some(let given)): headers.append(("X-Slack-Signature", given))
        case .some(.none): break
        }
        return resend(fixture, Sent(status: 0, body: "", headers: headers, bytes: body, seconds: 0))
    }

    /// Sends exactly the same request again (a replay).
    func resend(_ fixture: Fixture, _ sent: Sent) -> Sent {
        let started = ContinuousClock.now
        let answer = HTTPProbe.request(
            port: fixture.gateway.port, method: "POST", path: "/integrations/slack/interactions", headers: sent.headers, body: sent.bytes)
        let elapsed = started.duration(to: .now)
        return Sent(
            status: answer?.status ?? 0, body: answer?.body ?? "no answer", headers: sent.headers, bytes: sent.bytes,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// The first request the fake Slack got on `path` (failing the test, with the gateway's log, when none came).
    func request(_ fixture: Fixture, _ path: String) async throws -> JSONValue {
        let seen = await fixture.slack.await(path)
        return try XCTUnwrap(seen.first, "nothing reached \(path):\n\(fixture.gateway.log.suffix(3000))")
    }

    /// The JSON body of the first request on `path`.
    func message(_ fixture: Fixture, _ path: String) async throws -> JSONValue {
        let seen = try await request(fixture, path)
        return try XCTUnwrap(seen["json"], "\(seen)")
    }

    // MARK: - Approve

    func testAnApproveClickReleasesTheHeldCallOnceAndUpdatesTheMessage() async throws {
        let fixture = try await start()
        defer { fixture.stop() }
        let run = transfer(fixture, 21)
        let id = try await pending(fixture)

        // The message in the channel: a link to the request's page and the two buttons, carrying the approval's id.
        let delivered = try await message(fixture, "/incoming")
        let blocks = delivered["blocks"]?.arrayValue ?? []
        XCTAssertTrue(delivered.canonicalJSON.contains("<https://tollgate.example.com/ui/approvals/\(id)|"), delivered.canonicalJSON)
        XCTAssertFalse(delivered.canonicalJSON.contains("/v1/approvals/\(id)/approve"), "no API links that need a token and a POST")
        let buttons = try XCTUnwrap(blocks.first { $0["type"]?.stringValue == "actions" }?["elements"]?.arrayValue, "\(delivered)")
        XCTAssertEqual(buttons.map { $0["action_id"]?.stringValue ?? "" }, ["tollgate_approve", "tollgate_deny"])
        XCTAssertEqual(buttons.map { $0["value"]?.stringValue ?? "" }, [id, id])
        XCTAssertEqual(buttons.map { $0["type"]?.stringValue ?? "" }, ["button", "button"])
        XCTAssertEqual(fixture.runs(amount: 21), 0)

        let responseURL = "\(fixture.slack.base)/hooks/actions/T0TEAM0001/1/approve-21"
        let click = send(fixture, Self.form(Self.click("tollgate_approve", id: id, user: "U0ALICE001", responseURL: responseURL)))
        XCTAssertEqual(click.status, 200, click.body)
        XCTAssertLessThan(click.seconds, 3, "Slack waits 3 s at most")
        print(String(format: "slack approve click answered in %.1f ms", click.seconds * 1000))

        let result = try await run.value
        XCTAssertEqual(result.step(0)?["result"]?["structuredContent"]?["status"]?.stringValue, "transferred", result.description)
        XCTAssertEqual(fixture.runs(amount: 21), 1)

        // The message is replaced: approved by alice, no buttons left.
        let update = try await request(fixture, "/hooks/actions/T0TEAM0001/1/approve-21")
        let message = try XCTUnwrap(update["json"])
        XCTAssertEqual(message["replace_original"]?.boolValue, true)
        XCTAssertTrue(message["text"]?.stringValue?.hasPrefix("Approved by alice: pay/transfer for agent-a") == true, "\(message)")
        XCTAssertFalse(message["blocks"]?.arrayValue?.contains { $0["type"]?.stringValue == "actions" } ?? true, "\(message)")
        XCTAssertTrue(message.canonicalJSON.contains("Approved by alice (alice in Slack)."), message.canonicalJSON)
        XCTAssertTrue(message.canonicalJSON.contains("https://tollgate.example.com/ui/approvals/\(id)"))
        XCTAssertEqual(update["headers"]?["content-type"]?.stringValue, "application/json; charset=utf-8")
        XCTAssertNil(update["headers"]?["authorization"], "the bot token goes to Slack's API only")

        // The same signed request again is refused and decides nothing more.
        let replay = resend(fixture, click)
        XCTAssertEqual(replay.status, 409, replay.body)
        try await Task.sleep(for: .milliseconds(500))
        let countGranted = try await fixture.gateway.events(type: ApprovalGranted.type).count
        XCTAssertEqual(countGranted, 1)
        let countConsumed = try await fixture.gateway.events(type: ApprovalConsumed.type).count
        XCTAssertEqual(countConsumed, 1)
        XCTAssertEqual(fixture.runs(amount: 21), 1)
        XCTAssertEqual(fixture.approval(id)?["approvals"]?.arrayValue?.first?["reviewer"]?.stringValue, "alice")
        XCTAssertTrue(fixture.gateway.log.contains("a replay"), fixture.gateway.log.suffix(2000).description)
    }

    // MARK: - Deny

    func testADenyClickOpensTheDialogAndItsSubmissionDeniesWithTheReason() async throws {
        let fixture = try await start()
        defer { fixture.stop() }
        let run = transfer(fixture, 22)
        let id = try await pending(fixture)
        let responseURL = "\(fixture.slack.base)/hooks/actions/T0TEAM0001/2/deny-22"
        let click = send(fixture, Self.form(Self.click("tollgate_deny", id: id, user: "U0BOB00001", responseURL: responseURL, trigger: "trigger-22")))
        XCTAssertEqual(click.status, 200, click.body)
        XCTAssertLessThan(click.seconds, 3)
        print(String(format: "slack deny click answered in %.1f ms", click.seconds * 1000))

        // views.open: the bot token, the click's trigger, the dialog with a required reason.
        let open = try await request(fixture, "/api/views.open")
        XCTAssertEqual(open["headers"]?["authorization"]?.stringValue, "Bearer \(Self.botToken)")
        XCTAssertEqual(open["headers"]?["content-type"]?.stringValue, "application/json; charset=utf-8")
        let request = try XCTUnwrap(open["json"])
        XCTAssertEqual(request["trigger_id"]?.stringValue, "trigger-22")
        let view = try XCTUnwrap(request["view"])
        XCTAssertEqual(view["type"]?.stringValue, "modal")
        XCTAssertEqual(view["callback_id"]?.stringValue, "tollgate_deny")
        let metadata = try JSONValue(parsing: view["private_metadata"]?.stringValue ?? "")
        XCTAssertEqual(metadata["approval"]?.stringValue, id)
        XCTAssertEqual(metadata["response_url"]?.stringValue, responseURL)
        let input = try XCTUnwrap(view["blocks"]?.arrayValue?.first { $0["type"]?.stringValue == "input" })
        XCTAssertEqual(input["block_id"]?.stringValue, "reason")
        XCTAssertEqual(input["element"]?["type"]?.stringValue, "plain_text_input")
        XCTAssertEqual(input["element"]?["action_id"]?.stringValue, "reason")
        XCTAssertNotEqual(input["optional"]?.boolValue, true, "the reason is required")
        XCTAssertEqual(fixture.approval(id)?["status"]?.stringValue, "pending", "a click on Deny decides nothing yet")

        // An empty or blank reason keeps the dialog open with an error under the field.
        for reason in [nil, "   \n"] as [String?] {
            let empty = send(fixture, Self.form(Self.submission(id: id, user: "U0BOB00001", responseURL: responseURL, reason: reason)))
            XCTAssertEqual(empty.status, 200)
            let answer = try JSONValue(parsing: empty.body)
            XCTAssertEqual(answer["response_action"]?.stringValue, "errors", empty.body)
            XCTAssertTrue(answer["errors"]?["reason"]?.stringValue?.contains("needs a reason") == true, empty.body)
        }
        // A submission from a member who is not a reviewer is refused the same way.
        let stranger = send(fixture, Self.form(Self.submission(id: id, user: "U0NOBODY01", responseURL: responseURL, reason: "no")))
        XCTAssertEqual(try JSONValue(parsing: stranger.body)["response_action"]?.stringValue, "errors", stranger.body)
        XCTAssertEqual(fixture.approval(id)?["status"]?.stringValue, "pending")

        let submitted = send(
            fixture, Self.form(Self.submission(id: id, user: "U0BOB00001", responseURL: responseURL, reason: "not during the freeze")))
        XCTAssertEqual(submitted.status, 200, submitted.body)
        XCTAssertEqual(submitted.body, "", "an empty 200 closes the dialog")

        let result = try await run.value
        let answer = result.step(0)?["result"]
        XCTAssertEqual(answer?["isError"]?.boolValue, true, result.description)
        let text = answer?["content"]?.arrayValue?.first?.stringValue ?? ""
        XCTAssertTrue(text.contains("not during the freeze") && text.contains("bob"), text)
        XCTAssertEqual(answer?["structuredContent"]?["status"]?.stringValue, "denied")
        XCTAssertEqual(fixture.runs(amount: 22), 0)

        let update = try await message(fixture, "/hooks/actions/T0TEAM0001/2/deny-22")
        XCTAssertEqual(update["replace_original"]?.boolValue, true)
        XCTAssertTrue(update["text"]?.stringValue?.hasPrefix("Denied by bob") == true, "\(update)")
        XCTAssertTrue(update.canonicalJSON.contains("Reason: not during the freeze"), update.canonicalJSON)
        XCTAssertFalse(update["blocks"]?.arrayValue?.contains { $0["type"]?.stringValue == "actions" } ?? true)
        let countDenied = try await fixture.gateway.events(type: ApprovalDenied.type).count
        XCTAssertEqual(countDenied, 1)
    }

    // MARK: - Quorum and replays

    func testAQuorumOfTwoCountsEachReviewerOnceAndAReplayedClickNotAtAll() async throws {
        let fixture = try await start(quorum: 2)
        defer { fixture.stop() }
        let run = transfer(fixture, 23)
        let id = try await pending(fixture)
        let first = "\(fixture.slack.base)/hooks/actions/T0TEAM0001/3/first"
        let click = send(fixture, Self.form(Self.click("tollgate_approve", id: id, user: "U0ALICE001", responseURL: first)))
        XCTAssertEqual(click.status, 200)
        let progress = try await message(fixture, "/hooks/actions/T0TEAM0001/3/first")
        XCTAssertTrue(progress.canonicalJSON.contains("alice approved in Slack: 1 of 2; 1 more needed."), progress.canonicalJSON)
        XCTAssertTrue(progress["blocks"]?.arrayValue?.contains { $0["type"]?.stringValue == "actions" } == true, "still pending: the buttons stay")
        XCTAssertEqual(progress["replace_original"]?.boolValue, true)

        // A replay of alice's click, and a second real click of hers, do not make the quorum.
        XCTAssertEqual(resend(fixture, click).status, 409)
        let again = "\(fixture.slack.base)/hooks/actions/T0TEAM0001/3/again"
        XCTAssertEqual(send(fixture, Self.form(Self.click("tollgate_approve", id: id, user: "U0ALICE001", responseURL: again))).status, 200)
        let refused = try await message(fixture, "/hooks/actions/T0TEAM0001/3/again")
        XCTAssertTrue(refused.canonicalJSON.contains("alice could not approve: alice has already approved this request"), refused.canonicalJSON)
        XCTAssertEqual(fixture.approval(id)?["status"]?.stringValue, "pending")
        XCTAssertEqual(fixture.approval(id)?["approvals"]?.arrayValue?.count, 1)
        XCTAssertEqual(fixture.runs(amount: 23), 0)

        // The agent's own Slack account cannot approve its call.
        let own = "\(fixture.slack.base)/hooks/actions/T0TEAM0001/3/own"
        XCTAssertEqual(send(fixture, Self.form(Self.click("tollgate_approve", id: id, user: "U0AGENTA01", responseURL: own))).status, 200)
        let selfApproval = try await message(fixture, "/hooks/actions/T0TEAM0001/3/own")
        XCTAssertTrue(selfApproval.canonicalJSON.contains("agent-a made this call and cannot approve or deny it"), selfApproval.canonicalJSON)

        let second = "\(fixture.slack.base)/hooks/actions/T0TEAM0001/3/second"
        XCTAssertEqual(send(fixture, Self.form(Self.click("tollgate_approve", id: id, user: "U0BOB00001", responseURL: second))).status, 200)
        let result = try await run.value
        XCTAssertEqual(result.step(0)?["result"]?["structuredContent"]?["status"]?.stringValue, "transferred", result.description)
        XCTAssertEqual(fixture.runs(amount: 23), 1)
        let done = try await message(fixture, "/hooks/actions/T0TEAM0001/3/second")
        XCTAssertTrue(done["text"]?.stringValue?.hasPrefix("Approved by alice, bob") == true, "\(done)")
        let countGranted = try await fixture.gateway.events(type: ApprovalGranted.type).count
        XCTAssertEqual(countGranted, 2)
    }

    // MARK: - Refused

    func testForgedStaleMalformedAndUnmappedRequestsAreRefusedAndDecideNothing() async throws {
        let fixture = try await start(hold: "1s")
        defer { fixture.stop() }
        let run = try await transfer(fixture, 24).value
        XCTAssertEqual(run.step(0)?["result"]?["structuredContent"]?["status"]?.stringValue, "pending_approval", run.description)
        let id = try await pending(fixture)
        let hooks = "\(fixture.slack.base)/hooks/actions/T0TEAM0001/4/"
        let approve = Self.form(Self.click("tollgate_approve", id: id, user: "U0ALICE001", responseURL: hooks + "forged"))
        let now = Int(Date().timeIntervalSince1970)

        // Signatures and timestamps.
        let signatureCases: [(String, Sent)] = [
            (
                "another secret",
                send(fixture, approve, signature: Self.sign(approve, timestamp: String(now), secret: "0123456789abcdef0123456789abcdef"))
            ),
            ("the body changed after signing", send(fixture, approve + Array("&x=1".utf8), signature: Self.sign(approve, timestamp: String(now)))),
            ("no signature", send(fixture, approve, signature: .some(nil))),
            (
                "no timestamp",
                {
                    let body = approve
                    return resend(
                        fixture,
                        Sent(
                            status: 0, body: "",
                            headers: [
                                ("Content-Type", "application/x-www-form-urlencoded"), ("X-Slack-Signature", Self.sign(body, timestamp: String(now))),
                            ], bytes: body, seconds: 0))
                }()
            ),
            ("six minutes old", send(fixture, approve, timestamp: String(now - 360))),
            ("six minutes ahead", send(fixture, approve, timestamp: String(now + 360))),
            ("a v1 signature", send(fixture, approve, signature: "v1=" + String(Self.sign(approve, timestamp: String(now)).dropFirst(3)))),
            ("not hex", send(fixture, approve, signature: "v0=" + String(repeating: "z", count: 64))),
            ("a timestamp that is not a number", send(fixture, approve, timestamp: "yesterday")),
        ]
        for (what, sent) in signatureCases {
            XCTAssertEqual(sent.status, 401, "\(what): \(sent.body)")
        }

        // Bodies: too large (declared, and chunked without a length), not a form, not JSON, not a payload Slack sends.
        let big = Array("payload=".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 70 * 1024)
        XCTAssertEqual(send(fixture, big).status, 413)
        let stamp = String(now)
        var chunked = "POST /integrations/slack/interactions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        chunked += "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
        chunked += "X-Slack-Request-Timestamp: \(stamp)\r\nX-Slack-Signature: \(Self.sign(big, timestamp: stamp))\r\n\r\n"
        var raw = Array(chunked.utf8)
        for start in stride(from: 0, to: big.count, by: 8192) {
            let piece = big[start..<min(big.count, start + 8192)]
            raw += Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8)
        }
        raw += Array("0\r\n\r\n".utf8)
        XCTAssertEqual(HTTPProbe.raw(port: fixture.gateway.port, request: raw)?.status, 413)
        let malformed: [(String, [UInt8], String, Int)] = [
            (
                "JSON instead of a form", Array(Self.click("tollgate_approve", id: id, user: "U0ALICE001", responseURL: nil).canonicalJSON.utf8),
                "application/json", 415
            ),
            ("no payload", Array("token=x&team_id=T1".utf8), "application/x-www-form-urlencoded", 400),
            ("a payload that is not JSON", Array("payload=%7Bnot%20json".utf8), "application/x-www-form-urlencoded", 400),
            ("a bad escape", Array("payload=%ZZ".utf8), "application/x-www-form-urlencoded", 400),
            ("bytes that are not UTF-8", Array("payload=".utf8) + [0xC3, 0x28], "application/x-www-form-urlencoded", 400),
            ("a payload without a type", Self.form(["user": ["id": "U0ALICE001"]]), "application/x-www-form-urlencoded", 400),
            (
                "a click without a user",
                Self.form(["type": "block_actions", "actions": [["action_id": "tollgate_approve", "value": .string(id)]]]),
                "application/x-www-form-urlencoded", 400
            ),
            (
                "a button whose value is not an id",
                Self.form(Self.click("tollgate_approve", id: "'; DROP TABLE x", user: "U0ALICE001", responseURL: nil)),
                "application/x-www-form-urlencoded", 400
            ),
            ("two payloads", Array("payload=%7B%7D&payload=%7B%7D".utf8), "application/x-www-form-urlencoded", 400),
            (
                "deeply nested JSON", Array(("payload=" + String(repeating: "%5B", count: 200) + String(repeating: "%5D", count: 200)).utf8),
                "application/x-www-form-urlencoded", 400
            ),
        ]
        for (what, body, contentType, status) in malformed {
            let sent = send(fixture, body, contentType: contentType)
            XCTAssertEqual(sent.status, status, "\(what): \(sent.body)")
        }
        // Another interaction type is acknowledged and ignored.
        XCTAssertEqual(send(fixture, Self.form(["type": "view_closed", "user": ["id": "U0ALICE001"]])).status, 200)

        // Well signed, but from a member who is no reviewer, or an auditor: refused, and told so, to them only.
        for (user, expected) in [("U0NOBODY01", "is not any reviewer's slack_user_id"), ("U0CAROL001", "carol is an auditor")] {
            let url = hooks + user
            XCTAssertEqual(send(fixture, Self.form(Self.click("tollgate_approve", id: id, user: user, responseURL: url))).status, 200)
            let told = try await message(fixture, "/hooks/actions/T0TEAM0001/4/\(user)")
            XCTAssertEqual(told["response_type"]?.stringValue, "ephemeral")
            XCTAssertEqual(told["replace_original"]?.boolValue, false)
            XCTAssertTrue(told["text"]?.stringValue?.contains(expected) == true, "\(told)")
        }
        // A response_url outside the allowed prefix is never posted to.
        for url in ["\(fixture.slack.base)/elsewhere/x", "\(fixture.slack.base)/hooks/../elsewhere/y", "https://hooks.slack.com.example/z"] {
            XCTAssertEqual(send(fixture, Self.form(Self.click("tollgate_approve", id: id, user: "U0NOBODY01", responseURL: url))).status, 200)
        }
        // Deny clicks from them open no dialog.
        XCTAssertEqual(send(fixture, Self.form(Self.click("tollgate_deny", id: id, user: "U0CAROL001", responseURL: hooks + "deny"))).status, 200)
        _ = await fixture.slack.await("/hooks/actions/T0TEAM0001/4/deny")
        try await Task.sleep(for: .milliseconds(500))
        let paths = fixture.slack.requests.compactMap { $0["path"]?.stringValue }
        XCTAssertFalse(paths.contains { $0.contains("elsewhere") }, "\(paths)")
        XCTAssertFalse(paths.contains("/hooks/actions/T0TEAM0001/4/forged"), "a refused request makes no call: \(paths)")
        XCTAssertFalse(paths.contains("/api/views.open"), "\(paths)")
        XCTAssertTrue(fixture.gateway.log.contains("outside slack.response_url_prefix"))
        XCTAssertTrue(fixture.gateway.log.contains("slack: a click was refused"))
        XCTAssertTrue(fixture.gateway.log.contains("slack: a request was refused"))
        XCTAssertFalse(fixture.gateway.log.contains(Self.signingSecret), "the secret is never logged")

        // Nothing was decided, and the endpoint still serves.
        let shown = fixture.approval(id)
        XCTAssertEqual(shown?["status"]?.stringValue, "pending")
        XCTAssertEqual(shown?["version"]?.doubleValue, 1)
        let countGranted = try await fixture.gateway.events(type: ApprovalGranted.type).count
        XCTAssertEqual(countGranted, 0)
        let good = "\(hooks)good"
        XCTAssertEqual(send(fixture, Self.form(Self.click("tollgate_approve", id: id, user: "U0ALICE001", responseURL: good))).status, 200)
        let approved = try await message(fixture, "/hooks/actions/T0TEAM0001/4/good")
        XCTAssertTrue(approved["text"]?.stringValue?.hasPrefix("Approved by alice") == true, "\(approved)")
    }

    func testAViewsOpenFailureIsToldToTheReviewer() async throws {
        let fixture = try await start(hold: "1s", slackArguments: ["--views-open-error", "expired_trigger_id"])
        defer { fixture.stop() }
        _ = try await transfer(fixture, 25).value
        let id = try await pending(fixture)
        let url = "\(fixture.slack.base)/hooks/actions/T0TEAM0001/5/deny"
        XCTAssertEqual(send(fixture, Self.form(Self.click("tollgate_deny", id: id, user: "U0BOB00001", responseURL: url))).status, 200)
        let told = try await message(fixture, "/hooks/actions/T0TEAM0001/5/deny")
        XCTAssertEqual(told["response_type"]?.stringValue, "ephemeral")
        XCTAssertTrue(told["text"]?.stringValue?.contains("expired_trigger_id") == true, "\(told)")
        XCTAssertEqual(fixture.approval(id)?["status"]?.stringValue, "pending")
    }
}
