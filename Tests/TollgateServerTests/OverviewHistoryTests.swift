import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

@testable import TollgateServer

/// The reviewer page's overview and history, through a real `tollgate serve` on a real database, with decisions made
/// by the official MCP client against the fixture server: the counts per outcome, the busiest tools, hostile tool names,
/// the cap on tools counted by name, history's keyset paging, and both pages' refusal of a request without a session.
final class OverviewHistoryTests: XCTestCase {
    static let reviewers = ["alice": "reviewer", "bob": "reviewer", "carol": "auditor"]
    /// A tool name an agent chose: markup, quotes, a bidi override and a control character. Hidden by `evil*`.
    static let hostileTool = "evil<img src=x onerror=alert(1)>\"'&\u{202E}gnp.exe\u{0007}"

    static let policy = """
        version: "1"
        default: allow
        hide: ["evil*"]
        tools:
          delete_file: {action: deny, reason: never here}
          add:
            limits:
              - {counter: add_rate, window: day, max: 2, scope: agent}
          transfer: {action: require_approval, approval: {hold: 1s, timeout: 1h}}
        """

    func start(extraConfig: String = "") async throws -> GatewayUnderTest {
        try await GatewayUnderTest.start(
            servers: ["pay": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.policy)],
            reviewers: Self.reviewers, extraConfig: extraConfig)
    }

    static func call(_ name: String, _ arguments: JSONValue = .object([:])) -> JSONValue {
        ["op": "call_tool", "name": .string(name), "arguments": arguments, "timeout": 30]
    }

    func runClient(_ gateway: GatewayUnderTest, _ steps: [JSONValue], mode: String? = nil) throws -> Peers.ClientRun {
        try Peers.runClient(python: try Peers.python2(), url: gateway.url("pay"), key: gateway.key, mode: mode, steps: .array(steps))
    }

    /// The overview as the page reads it, once the projector has counted `total` decisions (or after `timeout`).
    func overview(_ gateway: GatewayUnderTest, total: Int64, timeout: Duration = .seconds(15)) async throws -> Overview {
        let client = PostgresClient(configuration: gateway.database)
        defer { Task { await client.shutdown() } }
        let store = OverviewStore(client: client)
        let deadline = ContinuousClock.now + timeout
        while true {
            let overview = try await Overview.load(store: store, sessions: .init(byServer: [:]), projections: ["decisions"])
            if overview.chart.grandTotal >= total || ContinuousClock.now >= deadline { return overview }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    // MARK: - Signing in (the contract's form, as a browser posts it)

    /// Signs `reviewer` in through `/ui/sign-in` and returns the `Cookie` header value of the session.
    func signIn(_ gateway: GatewayUnderTest, as reviewer: String) throws -> String {
        let form = try XCTUnwrap(HTTPProbe.get(port: gateway.port, path: "/ui/sign-in"), "no answer")
        XCTAssertEqual(form.status, 200, form.body)
        let pre = try XCTUnwrap(Self.cookie("tollgate_ui_pre", in: form), "no pre-session cookie: \(form.headers)")
        let csrf = try XCTUnwrap(form.body.firstMatch(of: /name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"/), form.body)
        let token = String(csrf.1 ?? csrf.2 ?? "")
        let body = "token=\(HTML.queryValue(gateway.tokens[reviewer]!))&csrf=\(HTML.queryValue(token))"
        let answer = try XCTUnwrap(
            HTTPProbe.request(
                port: gateway.port, method: "POST", path: "/ui/sign-in",
                headers: [
                    ("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", "tollgate_ui_pre=\(pre)"),
                    ("Origin", "http://127.0.0.1:\(gateway.port)"), ("Sec-Fetch-Site", "same-origin"),
                ],
                body: Array(body.utf8)))
        XCTAssertEqual(answer.status, 303, answer.body)
        let session = try XCTUnwrap(Self.cookie("tollgate_ui", in: answer), "no session cookie: \(answer.headers)")
        return "tollgate_ui=\(session)"
    }

    static func cookie(_ name: String, in response: HTTPProbe.Response) -> String? {
        for (header, value) in response.headers where header == "set-cookie" && value.hasPrefix(name + "=") {
            return String(value.dropFirst(name.count + 1).prefix { $0 != ";" })
        }
        return nil
    }

    func page(_ gateway: GatewayUnderTest, _ path: String, cookie: String?) throws -> HTTPProbe.Response {
        try XCTUnwrap(HTTPProbe.request(port: gateway.port, method: "GET", path: path, headers: cookie.map { [("Cookie", $0)] } ?? []))
    }

    /// The security headers every /ui answer carries (the contract).
    func assertSecurityHeaders(_ response: HTTPProbe.Response, _ path: String, line: UInt = #line) {
        XCTAssertEqual(
            response.header("content-security-policy"),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'", path, line: line)
        XCTAssertEqual(response.header("x-frame-options"), "DENY", path, line: line)
        XCTAssertEqual(response.header("x-content-type-options"), "nosniff", path, line: line)
        XCTAssertEqual(response.header("referrer-policy"), "no-referrer", path, line: line)
        XCTAssertEqual(response.header("cache-control"), "no-store", path, line: line)
    }

    // MARK: - Overview

    func testTheOverviewCountsEveryOutcomeOfRealCallsAndEscapesToolNames() async throws {
        let gateway = try await start()
        defer { gateway.stop() }
        var steps: [JSONValue] = []
        steps += (0..<3).map { _ in Self.call("echo", ["text": "hi"]) }  // allowed
        steps += (0..<2).map { _ in Self.call("delete_file", ["path": "/etc/passwd"]) }  // denied
        steps += (0..<4).map { _ in Self.call("add", ["a": 1, "b": 2]) }  // 2 allowed, 2 limited
        steps.append(Self.call("transfer", ["amount": 5, "to": "bob"]))  // held (pending after its 1 s hold)
        steps.append(Self.call(Self.hostileTool, ["x": 1]))  // hidden
        let run = try runClient(gateway, steps)
        XCTAssertEqual(run.steps.count, steps.count, run.description)

        let overview = try await overview(gateway, total: 11)
        let totals = overview.chart.totals
        XCTAssertEqual(totals, [.allowed: 5, .denied: 2, .limited: 2, .held: 1, .hidden: 1, .other: 0], gateway.log.suffix(3000).description)
        let tools = Dictionary(overview.busiest.map { ($0.tool, $0) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(overview.busiest.first?.tool, "add", "the busiest first")
        XCTAssertEqual(tools["add"]?.calls, [.allowed: 2, .limited: 2])
        XCTAssertEqual(tools["echo"]?.calls, [.allowed: 3])
        XCTAssertEqual(tools["delete_file"]?.calls, [.denied: 2])
        XCTAssertEqual(tools["transfer"]?.calls, [.held: 1])
        XCTAssertEqual(tools[Self.hostileTool]?.calls, [.hidden: 1])
        XCTAssertEqual(overview.busiest.map(\.server), Array(repeating: "pay", count: 5))

        // The projection rebuilt from the log holds the same rows.
        let client = PostgresClient(configuration: gateway.database)
        defer { Task { await client.shutdown() } }
        let rows = """
            SELECT string_agg(format('%s %s %s %s %s', minute, server, tool, decision, calls), E'\\n' ORDER BY minute, server, tool, decision)
            FROM (SELECT minute, '' AS server, '' AS tool, decision, calls FROM tollgate.decision_minutes
                  UNION ALL SELECT minute, server, tool, decision, calls FROM tollgate.tool_minutes) x
            """
        let live = try await client.query(rows)[0].decode(String?.self, 0)
        let rebuilt = try RunningProgram.run(
            RunningProgram.tollgateBinary, ["projections", "rebuild", "decisions", "--database", gateway.database.connectionString])
        XCTAssertEqual(rebuilt.status, 0, rebuilt.stderr)
        XCTAssertTrue(rebuilt.stdout.contains("decisions: replayed 11 events"), rebuilt.stdout)
        let after = try await client.query(rows)[0].decode(String?.self, 0)
        XCTAssertEqual(after, live)
        XCTAssertNotNil(live)

        // The page itself, as a signed-in auditor reads it.
        let cookie = try signIn(gateway, as: "carol")
        let answer = try page(gateway, "/ui/overview", cookie: cookie)
        XCTAssertEqual(answer.status, 200, answer.body)
        assertSecurityHeaders(answer, "/ui/overview")
        let html = answer.body
        XCTAssertTrue(html.contains("<svg id=\"decisions-chart\" role=\"img\" aria-label=\""), html)
        XCTAssertTrue(html.contains("11 decisions in 60 minutes: 5 allowed, 2 denied, 2 limited, 1 held, 1 hidden, 0 other"), html)
        XCTAssertTrue(html.contains("<table id=\"busiest-tools\""))
        XCTAssertTrue(html.contains("<p id=\"open-sessions\">"))
        XCTAssertTrue(html.contains("<p id=\"projector-lag\">"))
        // The agent's tool name is text: no element of its making, its bidi override and bell shown as escapes.
        XCTAssertFalse(html.contains("<img"), "an agent's tool name became markup")
        XCTAssertFalse(html.contains("\u{202E}") || html.contains("\u{0007}"))
        XCTAssertTrue(
            html.contains(
                "evil&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;<mark class=\"invisible\">\\u202E</mark>gnp.exe<mark class=\"invisible\">\\u0007</mark>"
            ), html)
        let row = try XCTUnwrap(html.firstMatch(of: /<tr data-server="pay" data-tool="add">(.*?)<\/tr>/)?.1)
        XCTAssertTrue(row.hasSuffix(DecisionChartTests.cells([4, 2, 0, 2, 0, 0, 0])), String(row))
    }

    func testOpenSessionsAreThisProcessesRelaySessions() async throws {
        let gateway = try await start()
        defer { gateway.stop() }
        let cookie = try signIn(gateway, as: "alice")
        let before = try page(gateway, "/ui/overview", cookie: cookie)
        XCTAssertTrue(before.body.contains("<p id=\"open-sessions\">0 relay sessions open in this gateway process."), before.body)
        // A handshake-era client keeps a session open while it sleeps.
        let python = try Peers.python2()
        let url = gateway.url("pay")
        let key = gateway.key
        let client = Task.detached {
            try Peers.runClient(python: python, url: url, key: key, mode: "legacy", steps: [["op": "list_tools"], ["op": "sleep", "seconds": 4]])
        }
        var seen = ""
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            seen = try page(gateway, "/ui/overview", cookie: cookie).body
            if seen.contains("1 relay session open in this gateway process (1 on pay)") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertTrue(seen.contains("1 relay session open in this gateway process (1 on pay)"), seen)
        _ = try await client.value
    }

    /// A flood of made-up tool names in one minute: at most 64 are counted by name, the rest as "other tools", and every
    /// call is counted.
    func testToolsPastTheCapInAMinuteAreCountedAsOtherTools() async throws {
        let gateway = try await start(extraConfig: "limits:\n  max_recorded_refusals_per_minute: 1000\n")
        defer { gateway.stop() }
        // Start early in a minute, so the 80 calls fall in one.
        let second = Int(Date().timeIntervalSince1970) % 60
        if second > 40 { try await Task.sleep(for: .seconds(61 - second)) }
        let steps = (0..<80).map { Self.call("evil-\($0)") }
        let run = try runClient(gateway, steps)
        XCTAssertEqual(run.steps.count, 80, run.description)
        let overview = try await overview(gateway, total: 80)
        XCTAssertEqual(overview.chart.totals[.hidden], 80)
        let client = PostgresClient(configuration: gateway.database)
        defer { Task { await client.shutdown() } }
        let rows = try await client.query(
            "SELECT minute, count(*) FILTER (WHERE server <> ''), coalesce(sum(calls) FILTER (WHERE server = ''), 0)::bigint, sum(calls)::bigint "
                + "FROM tollgate.tool_minutes GROUP BY minute ORDER BY minute")
        var named = 0
        var other: Int64 = 0
        var all: Int64 = 0
        for row in rows.rows {
            XCTAssertLessThanOrEqual(try row.decode(Int.self, 1), DecisionsProjection.maxNamedToolsPerMinute)
            named += try row.decode(Int.self, 1)
            other += try row.decode(Int64.self, 2)
            all += try row.decode(Int64.self, 3)
        }
        XCTAssertEqual(all, 80)
        XCTAssertEqual(Int64(named) + other, 80)
        if rows.rowCount == 1 {
            XCTAssertEqual(named, 64)
            XCTAssertEqual(other, 16)
            XCTAssertEqual(overview.busiest.filter { $0.server.isEmpty }.first?.total, 16)
        }
    }

    /// Refusals past an agent's budget are counted from their `RefusalsSummarized`: each entry under its tool and
    /// outcome, and the refusals past its 32 entries (whose decision it does not keep) as "other" of "other tools".
    func testRefusalsPastTheBudgetAreCountedFromTheirSummary() async throws {
        let gateway = try await start(extraConfig: "limits:\n  max_recorded_refusals_per_minute: 1\n")
        var steps = (0..<3).map { _ in Self.call("delete_file", ["path": "/x"]) }
        steps += (0..<40).map { Self.call("evil-\($0)") }
        let run = try runClient(gateway, steps)
        XCTAssertEqual(run.steps.count, 43, run.description)
        // The summary of the minute is written when the minute ends, or at shutdown; the rebuild then counts it.
        gateway.stop()
        let summaries = try await gateway.events(type: RefusalsSummarized.type)
        XCTAssertEqual(summaries.count, 1, gateway.log.suffix(2000).description)
        let rebuilt = try RunningProgram.run(
            RunningProgram.tollgateBinary, ["projections", "rebuild", "decisions", "--database", gateway.database.connectionString])
        XCTAssertEqual(rebuilt.status, 0, rebuilt.stderr)
        let client = PostgresClient(configuration: gateway.database)
        defer { Task { await client.shutdown() } }
        let byDecision = try await client.query("SELECT decision, sum(calls)::bigint FROM tollgate.decision_minutes GROUP BY 1 ORDER BY 1")
        let counts = try Dictionary(uniqueKeysWithValues: byDecision.rows.map { (try $0.decode(String.self, 0), try $0.decode(Int64.self, 1)) })
        XCTAssertEqual(counts, ["deny": 3, "hidden": 31, "refused": 9])
        let tools = try await client.query(
            "SELECT server, tool, decision, sum(calls)::bigint FROM tollgate.tool_minutes WHERE tool IN ('delete_file', 'evil-0', '') GROUP BY 1, 2, 3 ORDER BY 2"
        )
        let rows = try tools.rows.map {
            "\(try $0.decode(String.self, 0))/\(try $0.decode(String.self, 1))/\(try $0.decode(String.self, 2))/\(try $0.decode(Int64.self, 3))"
        }
        XCTAssertEqual(rows, ["//refused/9", "pay/delete_file/deny/3", "pay/evil-0/hidden/1"])
        XCTAssertEqual(DecisionOutcome(decision: "refused"), .other)
    }

    // MARK: - History

    /// `count` decided requests: held calls (three clients at once), then each decided through /v1 in turn (approved, denied).
    func decidedRequests(_ gateway: GatewayUnderTest, count: Int) async throws -> [String] {
        let python = try Peers.python2()
        let url = gateway.url("pay")
        let key = gateway.key
        let clients = (0..<3).map { client in
            // The client stops waiting for each held call after 0.3 s: its request stays pending.
            let steps: [JSONValue] = stride(from: client, to: count, by: 3).map {
                ["op": "call_tool", "name": "transfer", "arguments": ["amount": .number(Double(1000 + $0)), "to": "bob"], "timeout": 0.3]
            }
            return Task.detached { try Peers.runClient(python: python, url: url, key: key, steps: .array(steps)) }
        }
        for client in clients { _ = try await client.value }
        let pending = await gateway.awaitApprovals(count: count, as: "alice")
        XCTAssertEqual(pending.count, count, gateway.log.suffix(3000).description)
        // Oldest first, so the last decided is the newest request too.
        var ids: [String] = []
        for (index, item) in pending.reversed().enumerated() {
            let id = try XCTUnwrap(item["id"]?.stringValue)
            let answer =
                index % 3 == 2
                ? gateway.api("POST", "/v1/approvals/\(id)/deny", as: "bob", body: #"{"reason":"not <b>this</b> one"}"#)
                : gateway.api("POST", "/v1/approvals/\(id)/approve", as: "alice", body: #"{"comment":"fine"}"#)
            XCTAssertEqual(answer.status, 200, answer.text)
            ids.append(id)
        }
        return ids.reversed()  // newest first
    }

    func testHistoryPagesThroughDecidedRequestsNewestFirst() async throws {
        let gateway = try await start(extraConfig: "limits:\n  max_pending_approvals: 100\n")
        defer { gateway.stop() }
        let newestFirst = try await decidedRequests(gateway, count: 30)
        // One more, left pending: not history.
        let pendingRun = try runClient(gateway, [Self.call("transfer", ["amount": 1, "to": "eve"])])
        XCTAssertEqual(pendingRun.steps.count, 1)

        // The store's paging directly, three to a page: newest first, every request once, and back again.
        let client = PostgresClient(configuration: gateway.database)
        defer { Task { await client.shutdown() } }
        let store = ApprovalStore(client: client)
        var seen: [String] = []
        var query = History.Query()
        var pages: [History] = []
        while true {
            let page = try await History.load(query, store: store, pageSize: 7)
            pages.append(page)
            seen += page.items.map(\.id.lowercasedString)
            guard let older = page.older else { break }
            query = History.Query(before: older)
        }
        XCTAssertEqual(seen, newestFirst)
        XCTAssertEqual(pages.map(\.items.count), [7, 7, 7, 7, 2])
        XCTAssertNil(pages[0].newer)
        // Back from the last page: each newer page is the page before it.
        var back = pages.last!
        for expected in pages.dropLast().reversed() {
            let newer = try XCTUnwrap(back.newer)
            back = try await History.load(History.Query(after: newer), store: store, pageSize: 7)
            XCTAssertEqual(back.items.map(\.id), expected.items.map(\.id))
        }
        XCTAssertNil(back.newer, "the newest page has no newer one")

        // Through the page: 25 a page, rel=next to the rest, rel=prev back.
        let cookie = try signIn(gateway, as: "carol")
        let first = try page(gateway, "/ui/history", cookie: cookie)
        XCTAssertEqual(first.status, 200, first.body)
        assertSecurityHeaders(first, "/ui/history")
        let firstIDs = first.body.matches(of: /<tr data-approval-id="([0-9a-f-]{36})"/).map { String($0.1) }
        XCTAssertEqual(firstIDs, Array(newestFirst.prefix(25)))
        XCTAssertFalse(first.body.contains("rel=\"prev\""))
        XCTAssertFalse(first.body.contains("not <b>this</b>"), "a reason is text")
        XCTAssertTrue(first.body.contains("not &lt;b&gt;this&lt;/b&gt; one"), first.body)
        let nav = try XCTUnwrap(first.body.firstMatch(of: /<nav aria-label="Pages"[^>]*>(.*?)<\/nav>/)?.1)
        let next = try XCTUnwrap(nav.firstMatch(of: /<a rel="next" href="([^"]+)"/)?.1)
        let second = try page(gateway, String(next).replacingOccurrences(of: "&amp;", with: "&"), cookie: cookie)
        XCTAssertEqual(second.status, 200, second.body)
        XCTAssertEqual(second.body.matches(of: /<tr data-approval-id="([0-9a-f-]{36})"/).map { String($0.1) }, Array(newestFirst.dropFirst(25)))
        XCTAssertFalse(second.body.contains("rel=\"next\""))
        let prev = try XCTUnwrap(second.body.firstMatch(of: /<a rel="prev" href="([^"]+)"/)?.1)
        let again = try page(gateway, String(prev).replacingOccurrences(of: "&amp;", with: "&"), cookie: cookie)
        XCTAssertEqual(again.body.matches(of: /<tr data-approval-id="([0-9a-f-]{36})"/).map { String($0.1) }, firstIDs)

        // Filters, and hostile query strings refused in words.
        let filtered = try page(gateway, "/ui/history?tool=nothing-like-this", cookie: cookie)
        XCTAssertEqual(filtered.status, 200)
        XCTAssertTrue(filtered.body.contains("<p id=\"history-empty\">No decided requests match these filters.</p>"), filtered.body)
        for path in [
            "/ui/history?before=AAAA", "/ui/history?tool=\(String(repeating: "t", count: 300))", "/ui/history?tool=a&tool=b",
            "/ui/history?order=asc", "/ui/history?before=x&after=y", "/ui/history?page=2",
        ] {
            let answer = try page(gateway, path, cookie: cookie)
            XCTAssertEqual(answer.status, 400, "\(path): \(answer.body.prefix(300))")
            XCTAssertTrue(answer.body.contains("role=\"alert\""), path)
            assertSecurityHeaders(answer, path)
        }
    }

    func testBothPagesSendAVisitorWithoutASessionToSignIn() async throws {
        let gateway = try await start()
        defer { gateway.stop() }
        for path in ["/ui/history", "/ui/overview", "/ui/history?before=AAAA"] {
            for cookie in [nil, "tollgate_ui=forged-\(UUID())", "tollgate_ui="] as [String?] {
                let answer = try page(gateway, path, cookie: cookie)
                XCTAssertEqual(answer.status, 303, "\(path) \(cookie ?? "no cookie")")
                XCTAssertTrue(answer.header("location")?.hasPrefix("/ui/sign-in") == true, "\(answer.headers)")
                XCTAssertFalse(answer.body.contains("decisions-chart") || answer.body.contains("id=\"history\""))
                assertSecurityHeaders(answer, path)
            }
        }
        // Raw bytes: a session cookie smuggled in a second Cookie line or with a path trick opens nothing either.
        let raw = "GET /ui/../ui/overview HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: tollgate_ui_pre=x\r\nConnection: close\r\n\r\n"
        let answer = try XCTUnwrap(HTTPProbe.raw(port: gateway.port, request: Array(raw.utf8)))
        XCTAssertNotEqual(answer.status, 200)
        XCTAssertFalse(answer.body.contains("decisions-chart"))
    }
}
