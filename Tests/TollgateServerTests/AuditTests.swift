import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// `tollgate audit replay|verify|what-if` and `tollgate projections` against the log of a real session: the Python SDK
/// client through the gateway, with allowed, denied, limited, approved and refused calls.
final class AuditTests: XCTestCase {
    static let policy = """
        version: "1"
        default: allow
        tools:
          transfer: {action: require_approval, approval: {hold: 20s, timeout: 1h}}
          fail: {action: deny, reason: no failures please}
          add:
            limits: [{counter: add_rate, window: hour, max: 1, scope: agent}]
        """

    /// A gateway after one recorded session: echo (allowed), fail (denied), add (allowed), add (limited), transfer 51
    /// (approved by alice, ran), transfer 52 (denied by bob).
    func recordedSession() async throws -> GatewayUnderTest {
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "pay": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)
            ],
            reviewers: ["alice": "reviewer", "bob": "reviewer"])
        let steps: JSONValue = [
            ["op": "call_tool", "name": "echo", "arguments": ["text": "a"], "timeout": 30],
            ["op": "call_tool", "name": "fail", "arguments": ["message": "x"], "timeout": 30],
            ["op": "call_tool", "name": "add", "arguments": ["a": 1, "b": 2], "timeout": 30],
            ["op": "call_tool", "name": "add", "arguments": ["a": 3, "b": 4], "timeout": 30],
            ["op": "call_tool", "name": "transfer", "arguments": ["amount": 51, "to": "bob"], "timeout": 60],
            ["op": "call_tool", "name": "transfer", "arguments": ["amount": 52, "to": "bob"], "timeout": 60],
        ]
        let python = try Peers.python2()
        let url = gateway.url("pay")
        let key = gateway.key
        let run = Task.detached { try Peers.runClient(python: python, url: url, key: key, steps: steps) }
        for (reviewer, action, body) in [("alice", "approve", "{}"), ("bob", "deny", #"{"reason": "twice is too many"}"#)] {
            let pending = await gateway.awaitApprovals(as: reviewer)
            let id = try XCTUnwrap(pending.first?["id"]?.stringValue, gateway.log)
            XCTAssertEqual(gateway.api("POST", "/v1/approvals/\(id)/\(action)", as: reviewer, body: body).status, 200)
            // The next request appears only once this one is decided and the client moves on.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, gateway.api("GET", "/v1/approvals/\(id)", as: reviewer).body?["status"]?.stringValue == "pending" {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let result = try await run.value
        XCTAssertEqual(result.steps.count, 6, result.description)
        try await waitUntilSealed(gateway)
        return gateway
    }

    func tollgate(_ arguments: [String], database: PostgresConfiguration) throws -> (status: Int32, stdout: String, stderr: String) {
        try RunningProgram.run(
            RunningProgram.tollgateBinary, arguments + ["--database", database.connectionString, "--log-level", "warning"], timeout: .seconds(60))
    }

    func lines(_ text: String) -> [JSONValue] {
        text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
    }

    /// Waits until the projector has sealed every event (and the last outcomes have landed).
    func waitUntilSealed(_ gateway: GatewayUnderTest) async throws {
        let client = PostgresClient(configuration: gateway.database)
        defer { Task { await client.shutdown() } }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            let row = try await client.query("SELECT (SELECT count(*) FROM tollgate.events), (SELECT count(*) FROM tollgate.event_seals)")[0]
            if try row.decode(Int64.self, 0) == row.decode(Int64.self, 1) { return }
        }
        XCTFail("the projector did not seal every event")
    }

    func testReplayTellsWhatHappenedAndFiltersIt() async throws {
        let gateway = try await recordedSession()
        defer { gateway.stop() }
        let replay = try tollgate(["audit", "replay", "--format", "jsonl"], database: gateway.database)
        XCTAssertEqual(replay.status, 0, replay.stderr)
        let calls = lines(replay.stdout)
        XCTAssertEqual(calls.map { $0["tool"]?.stringValue ?? "" }, ["echo", "fail", "add", "add", "transfer", "transfer"], replay.stdout)
        XCTAssertEqual(
            calls.map { $0["decision"]?.stringValue ?? "" }, ["allow", "deny", "allow", "limited", "require_approval", "require_approval"])
        XCTAssertEqual(calls.map { $0["outcome"]?.stringValue ?? "" }, ["success", "refused", "success", "refused", "success", "approval_denied"])
        XCTAssertEqual(calls[1]["rule"]?.stringValue, "tools.fail")
        XCTAssertEqual(calls[3]["rule"]?.stringValue, "tools.add.limits[0]")
        XCTAssertEqual(calls[4]["approval"]?["approved_by"], ["alice"])
        XCTAssertEqual(calls[5]["approval"]?["denied_by"]?.stringValue, "bob")
        XCTAssertEqual(calls[5]["approval"]?["deny_reason"]?.stringValue, "twice is too many")
        XCTAssertEqual(Set(calls.compactMap { $0["policy_hash"]?.stringValue }).count, 1)
        XCTAssertEqual(calls[4]["arguments"]?["amount"]?.doubleValue, 51)

        let table = try tollgate(["audit", "replay"], database: gateway.database)
        XCTAssertTrue(table.stdout.contains("bob (denied)") && table.stdout.contains("tools.transfer"), table.stdout)
        XCTAssertEqual(
            lines(try tollgate(["audit", "replay", "--tool", "transfer", "--format", "jsonl"], database: gateway.database).stdout).count, 2)
        XCTAssertEqual(lines(try tollgate(["audit", "replay", "--since", "1h", "--format", "jsonl"], database: gateway.database).stdout).count, 6)
        XCTAssertEqual(lines(try tollgate(["audit", "replay", "--until", "1h", "--format", "jsonl"], database: gateway.database).stdout).count, 0)
        XCTAssertEqual(
            lines(try tollgate(["audit", "replay", "--agent", "agent-b", "--format", "jsonl"], database: gateway.database).stdout).count, 0)
        let bad = try tollgate(["audit", "replay", "--since", "last tuesday"], database: gateway.database)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--since"), bad.stderr)
    }

    func testWhatIfReportsTheDecisionsANewPolicyWouldChange() async throws {
        let gateway = try await recordedSession()
        defer { gateway.stop() }
        let next = gateway.directory.appendingPathComponent("next.yaml")
        try """
        version: "1"
        default: allow
        tools:
          echo: {action: deny, reason: echo is retired}
          transfer:
            rules:
              - {when: [{path: args.amount, op: gt, value: 51}], action: deny, reason: too much}
        """.write(to: next, atomically: true, encoding: .utf8)
        let run = try tollgate(["audit", "what-if", "--policy", next.path, "--format", "jsonl"], database: gateway.database)
        XCTAssertEqual(run.status, 0, run.stderr)
        let output = lines(run.stdout)
        let changes = output.filter { $0["summary"] == nil }
        let summary = try XCTUnwrap(output.last?["summary"])
        XCTAssertEqual(summary["replayed"]?.doubleValue, 6)
        let seen = changes.map { "\($0["tool"]?.stringValue ?? ""):\($0["before"]?.stringValue ?? "")->\($0["after"]?.stringValue ?? "")" }
        XCTAssertEqual(
            seen,
            ["echo:allow->deny", "fail:deny->allow", "add:limited->allow", "transfer:require_approval->allow", "transfer:require_approval->deny"],
            run.stdout)
        XCTAssertEqual(changes.last?["after_reason"]?.stringValue, "too much")
        XCTAssertEqual(summary["changed"]?.doubleValue, 5)

        let same = try tollgate(
            ["audit", "what-if", "--policy", gateway.directory.appendingPathComponent("policies/pay.yaml").path], database: gateway.database)
        XCTAssertTrue(same.stdout.contains("6 calls replayed, 0 decisions would change"), same.stdout)
        let invalid = gateway.directory.appendingPathComponent("invalid.yaml")
        try "version: \"1\"\ndefault: maybe\n".write(to: invalid, atomically: true, encoding: .utf8)
        let refused = try tollgate(["audit", "what-if", "--policy", invalid.path], database: gateway.database)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("invalid.yaml:2"), refused.stderr)
    }

    func testProjectionsShowTheirLagAndRebuildButTheSealDoesNot() async throws {
        let gateway = try await recordedSession()
        defer { gateway.stop() }
        let status = try tollgate(["projections", "status", "--format", "json"], database: gateway.database)
        XCTAssertEqual(status.status, 0, status.stderr)
        let rows = try JSONValue(parsing: status.stdout).arrayValue ?? []
        XCTAssertEqual(Set(rows.compactMap { $0["name"]?.stringValue }), ["streams", "approvals", "seal", "webhooks", "decisions", "inventory"])
        let rebuilt = try tollgate(["projections", "rebuild"], database: gateway.database)
        XCTAssertEqual(rebuilt.status, 0, rebuilt.stderr)
        XCTAssertTrue(rebuilt.stdout.contains("streams: replayed") && rebuilt.stdout.contains("approvals: replayed"), rebuilt.stdout)
        XCTAssertFalse(rebuilt.stdout.contains("seal"))
        let seal = try tollgate(["projections", "rebuild", "seal"], database: gateway.database)
        XCTAssertEqual(seal.status, 64)
        XCTAssertTrue(seal.stderr.contains("never rebuilt"), seal.stderr)
        XCTAssertEqual(try tollgate(["projections", "rebuild", "nonsense"], database: gateway.database).status, 64)
        // The rebuilt approvals still answer the API as before.
        XCTAssertEqual(gateway.api("GET", "/v1/approvals?status=denied", as: "bob").body?["items"]?.arrayValue?.count, 1)
    }

    func testVerifyNamesTheFirstEventThatWasChangedRemovedOrInserted() async throws {
        let gateway = try await recordedSession()
        let clean = try tollgate(["audit", "verify"], database: gateway.database)
        gateway.stop()
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)
        XCTAssertTrue(clean.stdout.contains("OK"), clean.stdout)
        let head = try XCTUnwrap(clean.stdout.split(separator: "\n").first { $0.hasPrefix("head ") }.map { String($0.dropFirst(5)) })
        XCTAssertEqual(try tollgate(["audit", "verify", "--expect", head], database: gateway.database).status, 0)
        let wrongHead = head.prefix { $0 != ":" } + ":" + String(repeating: "0", count: 64)
        XCTAssertEqual(try tollgate(["audit", "verify", "--expect", wrongHead], database: gateway.database).status, 1)

        // Three copies of the database, each altered by a superuser past the append-only triggers.
        let admin = PostgresClient(configuration: try TestCluster.configuration())
        defer { Task { await admin.shutdown() } }
        let source = try XCTUnwrap(gateway.database.connectionString.components(separatedBy: "dbname=").last)
        let middle = try await PostgresClient(configuration: gateway.database).query(
            "SELECT position, stream_id FROM tollgate.events ORDER BY transaction_id, position OFFSET 4 LIMIT 1")[0]
        let position = try middle.decode(Int64.self, 0)
        let stream = try middle.decode(String.self, 1)
        let tampering = [
            ("changed", "UPDATE tollgate.events SET data = jsonb_set(data, '{agent}', '\"someone-else\"') WHERE position = \(position)"),
            ("removed", "DELETE FROM tollgate.events WHERE position = \(position)"),
            (
                "inserted",
                """
                INSERT INTO tollgate.events (position, transaction_id, stream_id, version, type, data)
                OVERRIDING SYSTEM VALUE
                SELECT 999999, transaction_id, 'call-forged', 1, 'ToolCallDecided', data FROM tollgate.events WHERE position = \(position)
                """
            ),
        ]
        for (kind, statement) in tampering {
            let copy = "\(source)_\(kind)"
            try await admin.query("CREATE DATABASE \(copy) TEMPLATE \(source)")
            let altered = PostgresConfiguration(
                gateway.database.connectionString.replacingOccurrences(of: "dbname=\(source)", with: "dbname=\(copy)"))
            // As the owner: the runtime role can do none of this (DatabaseRoleTests).
            let client = PostgresClient(configuration: try TestCluster.owner(of: altered))
            try await client.withConnection { connection in
                try connection.execute(
                    "ALTER TABLE tollgate.events DISABLE TRIGGER USER; \(statement); ALTER TABLE tollgate.events ENABLE TRIGGER USER")
            }
            await client.shutdown()
            let verify = try tollgate(["audit", "verify"], database: altered)
            XCTAssertEqual(verify.status, 1, "\(kind): \(verify.stdout)")
            let broken = verify.stdout.split(separator: "\n").first { $0.hasPrefix("BROKEN") }.map(String.init) ?? ""
            let expected = kind == "inserted" ? "position 999999" : "position \(position)"
            XCTAssertTrue(broken.contains(expected) && broken.contains("was \(kind)"), "\(kind): \(verify.stdout)")
            if kind == "changed" { XCTAssertTrue(broken.contains(stream), broken) }
        }
    }

    func testArgumentsAreRedactedPerToolBeforeTheyAreWritten() async throws {
        let policy = """
            version: "1"
            default: allow
            tools:
              transfer: {action: require_approval, approval: {hold: 1s, timeout: 1h}}
            """
        let gateway = try await GatewayUnderTest.start(servers: [
            "pay": .stdio(
                command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: policy,
                extra: "    store_arguments: full\n    store_arguments_by_tool: {transfer: hash, \"ec*\": keys}\n")
        ])
        defer { gateway.stop() }
        let run = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("pay"), key: gateway.key,
            steps: [
                ["op": "call_tool", "name": "echo", "arguments": ["text": "secret text"], "timeout": 30],
                ["op": "call_tool", "name": "add", "arguments": ["a": 1, "b": 2], "timeout": 30],
                ["op": "call_tool", "name": "transfer", "arguments": ["amount": 9, "to": "acct_secret"], "timeout": 30],
            ])
        XCTAssertEqual(run.steps.count, 3, run.description)
        var decided: [String: ToolCallDecided] = [:]
        for event in try await gateway.events(type: ToolCallDecided.type) {
            let call = try EventCoding.decode(ToolCallDecided.self, from: event.data)
            decided[call.tool] = call
        }
        XCTAssertEqual(decided["echo"]?.arguments, ["text"])
        XCTAssertEqual(decided["echo"]?.argumentsStorage, "keys")
        XCTAssertEqual(decided["add"]?.arguments, ["a": 1, "b": 2])
        XCTAssertNil(decided["transfer"]?.arguments)
        XCTAssertEqual(decided["transfer"]?.argumentsStorage, "hash")
        XCTAssertEqual(decided["transfer"]?.argumentsHash, ToolCallDecided.hash(arguments: ["amount": 9, "to": "acct_secret"]))
        let requests = try await gateway.events(type: ApprovalRequested.type)
        let requested = try XCTUnwrap(requests.first)
        XCTAssertNil(try EventCoding.decode(ApprovalRequested.self, from: requested.data).arguments)
        let everything = try await gateway.events().map { String(decoding: $0.data, as: UTF8.self) }.joined()
        XCTAssertFalse(everything.contains("secret text") || everything.contains("acct_secret"), "redacted values never reach the log")
    }
}
