import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

@testable import TollgateServer

/// The approvals API: its OpenAPI document against what it really answers, hostile input at its boundary, paging,
/// and the `tollgate approvals` command line against it.
final class ApprovalAPITests: XCTestCase {
    /// A gateway with `count` pending requests (held a second each, then left pending).
    func gatewayWithPending(_ count: Int) async throws -> GatewayUnderTest {
        let policy = """
            version: "1"
            default: allow
            tools:
              transfer: {action: require_approval, approval: {hold: 1s, timeout: 1h}}
            """
        let gateway = try await GatewayUnderTest.start(
            servers: ["pay": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: policy)],
            reviewers: ApprovalFlowTests.reviewers)
        let steps = (0..<count).map { index -> JSONValue in
            ["op": "call_tool", "name": "transfer", "arguments": ["amount": .number(Double(100 + index)), "to": "bob"], "timeout": 30]
        }
        let run = try Peers.runClient(python: try Peers.python2(), url: gateway.url("pay"), key: gateway.key, steps: .array(steps))
        XCTAssertEqual(run.steps.count, count, run.description)
        let pending = await gateway.awaitApprovals(count: count, as: "alice")
        XCTAssertEqual(pending.count, count, gateway.log)
        return gateway
    }

    /// The document compiled in (`Approvals/openapi.json`) is JSON and lists exactly the operations the routes serve:
    /// the same operationIds, each with its method and path.
    func testTheOpenAPIDocumentListsEveryOperationTheRoutesServe() throws {
        let document = try JSONValue(parsing: String(decoding: ApprovalAPIDocument.bytes, as: UTF8.self))
        XCTAssertEqual(document["openapi"]?.stringValue, "3.1.0")
        let paths = try XCTUnwrap(document["paths"]?.objectValue)
        let methods: Set = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        var documented: Set<String> = []
        for (path, item) in paths {
            for (method, operation) in item.objectValue ?? [:] where methods.contains(method) {
                documented.insert("\(operation["operationId"]?.stringValue ?? "(no operationId)") \(method.uppercased()) \(path)")
            }
        }
        let served =
            ApprovalRoutes.Operation.allCases.map { "\($0.rawValue) \($0.method.rawValue) \($0.documentedPath)" }
            + InventoryRoutes.Operation.allCases.map { "\($0.rawValue) \($0.method.rawValue) \($0.documentedPath)" }
        XCTAssertEqual(documented, Set(served))
        XCTAssertEqual(served.count, 8)
    }

    func testTheOpenAPIDocumentDescribesWhatTheAPIAnswers() async throws {
        let gateway = try await gatewayWithPending(3)
        defer { gateway.stop() }
        let documentAnswer = gateway.api("GET", "/v1/openapi.json", as: nil)
        XCTAssertEqual(documentAnswer.status, 200)
        let document = try XCTUnwrap(documentAnswer.body)
        let check = SchemaCheck(document: document)
        let paths = try XCTUnwrap(document["paths"]?.objectValue)
        XCTAssertEqual(documentAnswer.text, String(decoding: ApprovalAPIDocument.bytes, as: UTF8.self), "the document compiled in")
        XCTAssertEqual(
            Set(paths.keys), Set(ApprovalRoutes.Operation.allCases.map(\.documentedPath) + InventoryRoutes.Operation.allCases.map(\.documentedPath)))
        let ids = (gateway.api("GET", "/v1/approvals", as: "alice").body?["items"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        XCTAssertEqual(ids.count, 3)

        /// Checks one answer against the operation's documented responses.
        func conforms(_ path: String, _ method: String, _ answer: (status: Int, body: JSONValue?, text: String), line: UInt = #line) {
            guard let operation = paths[path]?[method] else { return XCTFail("\(method) \(path) is not documented", line: line) }
            guard let response = operation["responses"]?[String(answer.status)] else {
                return XCTFail("\(method) \(path) answered \(answer.status), which is not documented: \(answer.text)", line: line)
            }
            let resolved = response["$ref"]?.stringValue.flatMap(check.resolve) ?? response
            guard let schema = resolved["content"]?["application/json"]?["schema"] else { return XCTFail("no schema", line: line) }
            guard let body = answer.body else { return XCTFail("\(method) \(path): the body is not JSON: \(answer.text)", line: line) }
            XCTAssertEqual(check.problems(body, schema), [], "\(method) \(path) \(answer.status)", line: line)
        }

        // Every documented operation, answered as documented.
        conforms("/v1/openapi.json", "get", documentAnswer)
        conforms("/v1/approvals", "get", gateway.api("GET", "/v1/approvals?status=pending&limit=2", as: "carol"))
        conforms("/v1/approvals", "get", gateway.api("GET", "/v1/approvals?limit=0", as: "carol"))
        conforms("/v1/approvals", "get", gateway.api("GET", "/v1/approvals", as: nil))
        conforms("/v1/approvals/{id}", "get", gateway.api("GET", "/v1/approvals/\(ids[0])", as: "carol"))
        conforms("/v1/approvals/{id}", "get", gateway.api("GET", "/v1/approvals/\(UUID())", as: "carol"))
        conforms(
            "/v1/approvals/{id}/approve", "post", gateway.api("POST", "/v1/approvals/\(ids[0])/approve", as: "alice", body: #"{"comment":"ok"}"#))
        conforms("/v1/approvals/{id}/approve", "post", gateway.api("POST", "/v1/approvals/\(ids[0])/approve", as: "bob", body: "{}"))
        conforms("/v1/approvals/{id}/approve", "post", gateway.api("POST", "/v1/approvals/\(ids[1])/approve", as: "agent-a", body: "{}"))
        conforms("/v1/approvals/{id}/approve", "post", gateway.api("POST", "/v1/approvals/\(ids[1])/approve", as: "carol", body: "{}"))
        conforms(
            "/v1/approvals/{id}/approve", "post",
            gateway.api("POST", "/v1/approvals/\(ids[1])/approve", as: "alice", body: "x", contentType: "text/plain"))
        conforms("/v1/approvals/{id}/deny", "post", gateway.api("POST", "/v1/approvals/\(ids[2])/deny", as: "bob", body: #"{"reason":"no"}"#))
        conforms("/v1/approvals/{id}/deny", "post", gateway.api("POST", "/v1/approvals/\(ids[1])/deny", as: "bob", body: "{}"))
        conforms("/v1/approvals/{id}/deny", "post", gateway.api("POST", "/v1/approvals/\(UUID())/deny", as: "bob", body: #"{"reason":"no"}"#))
        let big = String(repeating: "x", count: 20_000)
        conforms("/v1/approvals/{id}/deny", "post", gateway.api("POST", "/v1/approvals/\(ids[1])/deny", as: "bob", body: #"{"reason":"\#(big)"}"#))

        // Methods the document does not list are refused with the documented error shape.
        for (method, path) in [("DELETE", "/v1/approvals/\(ids[0])"), ("PUT", "/v1/approvals"), ("GET", "/v1/approvals/\(ids[0])/approve")] {
            let answer = gateway.api(method, path, as: "alice")
            XCTAssertEqual(answer.status, 405, "\(method) \(path): \(answer.text)")
            XCTAssertEqual(check.problems(answer.body ?? .null, .object(["$ref": "#/components/schemas/Error"])), [])
        }
    }

    func testHostileInputGetsAClearErrorAndDecidesNothing() async throws {
        let gateway = try await gatewayWithPending(1)
        defer { gateway.stop() }
        let id = try XCTUnwrap(gateway.api("GET", "/v1/approvals", as: "alice").body?["items"]?.arrayValue?.first?["id"]?.stringValue)
        let approve = "/v1/approvals/\(id)/approve"
        let deny = "/v1/approvals/\(id)/deny"
        let cases: [(method: String, path: String, reviewer: String?, body: String?, contentType: String, status: Int, code: String)] = [
            ("POST", approve, "alice", "{not json", "application/json", 400, "invalid_body"),
            ("POST", approve, "alice", "[1,2]", "application/json", 400, "invalid_body"),
            ("POST", approve, "alice", #"{"comment": 5}"#, "application/json", 400, "invalid_body"),
            ("POST", approve, "alice", #"{"comment": "a", "status": "approved"}"#, "application/json", 400, "invalid_body"),
            ("POST", approve, "alice", #"{"comment": "\#(String(repeating: "é", count: 2001))"}"#, "application/json", 400, "invalid_body"),
            ("POST", approve, "alice", #"{"comment": "nul\u0000byte"}"#, "application/json", 400, "invalid_body"),
            ("POST", approve, "alice", String(repeating: " ", count: 17_000) + "{}", "application/json", 413, "body_too_large"),
            ("POST", approve, "alice", "{}", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
            ("POST", deny, "alice", "{}", "application/json", 400, "invalid_body"),
            ("POST", deny, "alice", #"{"reason": "   "}"#, "application/json", 400, "invalid_body"),
            ("POST", deny, "alice", #"{"reason": ["no"]}"#, "application/json", 400, "invalid_body"),
            ("POST", "/v1/approvals/not-a-uuid/approve", "alice", "{}", "application/json", 404, "not_found"),
            ("POST", "/v1/approvals/'%20OR%201=1--/approve", "alice", "{}", "application/json", 404, "not_found"),
            ("GET", "/v1/approvals?status=bogus", "alice", nil, "", 400, "invalid_parameter"),
            ("GET", "/v1/approvals?limit=abc", "alice", nil, "", 400, "invalid_parameter"),
            ("GET", "/v1/approvals?limit=501", "alice", nil, "", 400, "invalid_parameter"),
            ("GET", "/v1/approvals?cursor=AAAA", "alice", nil, "", 400, "invalid_cursor"),
            ("GET", "/v1/approvals?cursor=\(String(repeating: "Z", count: 300))", "alice", nil, "", 400, "invalid_cursor"),
            ("GET", "/v1/approvals?server=\(String(repeating: "s", count: 300))", "alice", nil, "", 400, "invalid_parameter"),
            ("GET", "/v1/approvals?sort=desc", "alice", nil, "", 400, "invalid_parameter"),
            ("GET", "/v1/approvals", "tg_not-a-real-token", nil, "", 401, "unauthorized"),
            ("GET", "/v1/approvals", String(repeating: "t", count: 600), nil, "", 401, "unauthorized"),
            ("POST", approve, nil, "{}", "application/json", 401, "unauthorized"),
            ("POST", approve, "carol", "{}", "application/json", 403, "forbidden"),
            ("POST", approve, gateway.key, "{}", "application/json", 401, "unauthorized"),
        ]
        for item in cases {
            let answer = gateway.api(item.method, item.path, as: item.reviewer, body: item.body, contentType: item.contentType)
            XCTAssertEqual(
                answer.status, item.status, "\(item.method) \(item.path.prefix(80)) \(item.body?.prefix(60) ?? ""): \(answer.text.prefix(300))")
            XCTAssertEqual(answer.body?["error"]?["code"]?.stringValue, item.code, answer.text.prefix(300).description)
            XCTAssertFalse(answer.body?["error"]?["message"]?.stringValue?.isEmpty ?? true)
        }
        // A Basic credential is not a bearer token.
        let basic = HTTPProbe.request(
            port: gateway.port, method: "GET", path: "/v1/approvals", headers: [("Authorization", "Basic YWxpY2U6c2VjcmV0")])
        XCTAssertEqual(basic?.status, 401)
        XCTAssertEqual(basic?.headers.first { $0.name.lowercased() == "www-authenticate" }?.value.hasPrefix("Bearer"), true)
        // Nothing was decided, and the API still serves.
        let after = gateway.api("GET", "/v1/approvals/\(id)", as: "alice")
        XCTAssertEqual(after.status, 200)
        XCTAssertEqual(after.body?["status"]?.stringValue, "pending")
        XCTAssertEqual(after.body?["version"]?.doubleValue, 1)
    }

    func testPagesWalkEveryRequestOnceAndFiltersNarrowThem() async throws {
        let gateway = try await gatewayWithPending(5)
        defer { gateway.stop() }
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let path = "/v1/approvals?limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try XCTUnwrap(gateway.api("GET", path, as: "carol").body)
            seen += (page["items"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            cursor = page["next_cursor"]?.stringValue
            pages += 1
        } while cursor != nil && pages < 10
        XCTAssertEqual(pages, 3)
        XCTAssertEqual(seen.count, 5)
        XCTAssertEqual(Set(seen).count, 5)
        XCTAssertEqual(gateway.api("GET", "/v1/approvals?tool=transfer&agent=agent-a&server=pay", as: "carol").body?["items"]?.arrayValue?.count, 5)
        XCTAssertEqual(gateway.api("GET", "/v1/approvals?agent=agent-b", as: "carol").body?["items"]?.arrayValue?.count, 0)
        XCTAssertEqual(gateway.api("GET", "/v1/approvals?status=approved", as: "carol").body?["items"]?.arrayValue?.count, 0)
        // Newest first.
        let times = (gateway.api("GET", "/v1/approvals", as: "carol").body?["items"]?.arrayValue ?? []).compactMap { $0["requested_at"]?.stringValue }
        XCTAssertEqual(times, times.sorted(by: >))
    }

    func testTheCommandLineListsShowsAndDecides() async throws {
        let gateway = try await gatewayWithPending(2)
        defer { gateway.stop() }
        let environment = [
            "TOLLGATE_SERVER": "http://127.0.0.1:\(gateway.port)", "TOLLGATE_TOKEN": gateway.tokens["alice"]!, "XDG_CONFIG_HOME": "/nonexistent",
        ]
        func tollgate(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try RunningProgram.run(RunningProgram.tollgateBinary, arguments, environment: environment, timeout: .seconds(30))
        }
        let list = try tollgate(["approvals", "list", "--format", "json"], environment: environment)
        XCTAssertEqual(list.status, 0, list.stderr)
        let ids = (try JSONValue(parsing: list.stdout)["items"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        XCTAssertEqual(ids.count, 2)
        let table = try tollgate(["approvals", "list"], environment: environment)
        XCTAssertTrue(table.stdout.contains(ids[0]) && table.stdout.contains("STATUS") && table.stdout.contains("0/1"), table.stdout)

        let show = try tollgate(["approvals", "show", ids[0]], environment: environment)
        XCTAssertTrue(show.stdout.contains("tools.transfer") && show.stdout.contains("\"to\":\"bob\""), show.stdout)

        let approve = try tollgate(["approvals", "approve", ids[0], "--comment", "checked"], environment: environment)
        XCTAssertEqual(approve.status, 0, approve.stderr)
        XCTAssertTrue(approve.stdout.contains("approved"), approve.stdout)
        let again = try tollgate(["approvals", "deny", ids[0], "--reason", "too late"], environment: environment)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("already_decided") && again.stderr.contains("approved by alice"), again.stderr)
        let denied = try tollgate(["approvals", "deny", ids[1], "--reason", "no", "--format", "json"], environment: environment)
        XCTAssertEqual(denied.status, 0, denied.stderr)
        XCTAssertEqual(try JSONValue(parsing: denied.stdout)["status"]?.stringValue, "denied")

        // The token from the settings file; no token at all; a token that is not a reviewer's; bad arguments.
        let settings = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: settings.appendingPathComponent("tollgate"), withIntermediateDirectories: true)
        try "server: http://127.0.0.1:\(gateway.port)\ntoken: \(gateway.tokens["carol"]!)\n".write(
            to: settings.appendingPathComponent("tollgate/cli.yaml"), atomically: true, encoding: .utf8)
        let fromFile = try tollgate(["approvals", "list", "--status", "all", "--format", "json"], environment: ["XDG_CONFIG_HOME": settings.path])
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        XCTAssertEqual(try JSONValue(parsing: fromFile.stdout)["items"]?.arrayValue?.count, 2)
        let auditor = try tollgate(["approvals", "approve", ids[1]], environment: ["XDG_CONFIG_HOME": settings.path])
        XCTAssertEqual(auditor.status, 1)
        XCTAssertTrue(auditor.stderr.contains("forbidden"), auditor.stderr)
        let none = try tollgate(["approvals", "list"], environment: ["XDG_CONFIG_HOME": "/nonexistent"])
        XCTAssertEqual(none.status, 64)
        XCTAssertTrue(none.stderr.contains("TOLLGATE_TOKEN"), none.stderr)
        var wrong = environment
        wrong["TOLLGATE_TOKEN"] = gateway.key
        XCTAssertEqual(try tollgate(["approvals", "list"], environment: wrong).status, 1)
        XCTAssertNotEqual(try tollgate(["approvals", "show", "not-an-id"], environment: environment).status, 0)
        XCTAssertNotEqual(try tollgate(["approvals", "list", "--limit", "0"], environment: environment).status, 0)
        XCTAssertNotEqual(try tollgate(["approvals", "deny", ids[1], "--reason", " "], environment: environment).status, 0)
        try "[not: a mapping".write(to: settings.appendingPathComponent("tollgate/cli.yaml"), atomically: true, encoding: .utf8)
        let broken = try tollgate(["approvals", "list"], environment: ["XDG_CONFIG_HOME": settings.path])
        XCTAssertEqual(broken.status, 64)
        XCTAssertTrue(broken.stderr.contains("cli.yaml"), broken.stderr)
        var unreachable = environment
        unreachable["TOLLGATE_SERVER"] = "http://127.0.0.1:\(HTTPProbe.freePort())"
        XCTAssertEqual(try tollgate(["approvals", "list"], environment: unreachable).status, 69)
    }

    func testWatchPrintsEachNewRequestAsItArrives() async throws {
        let gateway = try await gatewayWithPending(1)
        defer { gateway.stop() }
        let environment = [
            "TOLLGATE_SERVER": "http://127.0.0.1:\(gateway.port)", "TOLLGATE_TOKEN": gateway.tokens["alice"]!, "XDG_CONFIG_HOME": "/nonexistent",
        ]
        let watch = try RunningProgram(
            RunningProgram.tollgateBinary, ["approvals", "watch", "--format", "json", "--count", "2", "--interval", "0.2"], environment: environment)
        defer { watch.kill() }
        // A second request arrives while it watches.
        _ = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("pay"), key: gateway.key,
            steps: [["op": "call_tool", "name": "transfer", "arguments": ["amount": 777, "to": "eve"], "timeout": 30]])
        XCTAssertEqual(try watch.wait(timeout: .seconds(20)), 0, watch.standardError)
        let lines = watch.standardOutput.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        XCTAssertEqual(lines.count, 2, watch.standardOutput)
        XCTAssertEqual(Set(lines.compactMap { $0["id"]?.stringValue }).count, 2)
        XCTAssertEqual(lines.last?["arguments_hash"]?.stringValue?.count, 64)
    }
}
