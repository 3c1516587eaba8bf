import Crypto
import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

@testable import TollgateServer

/// The reviewer page at `/ui` against a real `tollgate serve`, real PostgreSQL and the official MCP client, spoken to
/// with raw HTTP like a browser (and like a browser that is not one): sign-in and sessions, CSRF and origins, the
/// security headers, deciding from the forms, and hostile input.
final class ReviewerPageTests: XCTestCase {
    static let headers: [(String, String)] = [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'"
        ),
        ("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"), ("cache-control", "no-store"),
    ]

    /// A browser's cookie jar and requests over raw HTTP.
    struct Browser {
        let port: Int
        var cookies: [String: String] = [:]
        /// Headers every request sends (a browser's `Origin`, `Sec-Fetch-Site`).
        var extra: [(String, String)] = []

        init(port: Int) { self.port = port }

        mutating func request(_ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = []) -> HTTPProbe.Response {
            var all = extra + headers
            if !cookies.isEmpty { all.append(("Cookie", cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))) }
            if body != nil, !all.contains(where: { $0.0.lowercased() == "content-type" }) {
                all.append(("Content-Type", "application/x-www-form-urlencoded"))
            }
            let response =
                HTTPProbe.request(port: port, method: method, path: path, headers: all, body: Array((body ?? "").utf8))
                ?? HTTPProbe.Response(status: 0, body: "no answer")
            for header in response.headers where header.name == "set-cookie" {
                let pair = header.value.split(separator: ";")[0]
                guard let equals = pair.firstIndex(of: "=") else { continue }
                let name = String(pair[..<equals])
                let value = String(pair[pair.index(after: equals)...])
                if value.isEmpty || header.value.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = value }
            }
            return response
        }

        mutating func get(_ path: String) -> HTTPProbe.Response { request("GET", path) }

        mutating func post(_ path: String, _ fields: [(String, String)], headers: [(String, String)] = []) -> HTTPProbe.Response {
            request("POST", path, body: ReviewerPageTests.form(fields), headers: headers)
        }

        /// Signs in with `token`; the answer to the POST.
        mutating func signIn(_ token: String, next: String? = nil) -> HTTPProbe.Response {
            let page = get("/ui/sign-in")
            var fields = [("token", token), ("csrf", ReviewerPageTests.csrf(in: page.body) ?? "")]
            if let next { fields.append(("next", next)) }
            return post("/ui/sign-in", fields)
        }
    }

    static func form(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
    }

    /// The first hidden `csrf` value of a page.
    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: #"name="csrf" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    static let policy = """
        version: "1"
        default: allow
        tools:
          transfer: {action: require_approval, reason: money moves, approval: {hold: 20s, timeout: 1h}}
        """

    struct Fixture {
        let gateway: GatewayUnderTest
        let ledger: URL

        func runs(amount: Double) -> Int {
            let text = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }.filter {
                $0["tool"]?.stringValue == "transfer" && $0["arguments"]?["amount"]?.doubleValue == amount
            }.count
        }

        var browser: Browser { Browser(port: gateway.port) }
    }

    func start(policy: String = ReviewerPageTests.policy, extraConfig: String = "") async throws -> Fixture {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-ui-\(UUID().uuidString.prefix(8)).jsonl")
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "pay": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path], policy: policy)
            ],
            reviewers: ApprovalFlowTests.reviewers, extraConfig: extraConfig)
        return Fixture(gateway: gateway, ledger: ledger)
    }

    /// Runs the official client in the background with one held `transfer` of `amount`.
    func hold(_ fixture: Fixture, amount: Double, to: String = "bob") -> Task<Peers.ClientRun, any Error> {
        let python = Result { try Peers.python2() }
        let url = fixture.gateway.url("pay")
        let key = fixture.gateway.key
        let steps: JSONValue = [["op": "call_tool", "name": "transfer", "arguments": ["amount": .number(amount), "to": .string(to)], "timeout": 60]]
        return Task.detached { try Peers.runClient(python: try python.get(), url: url, key: key, steps: steps) }
    }

    func pendingID(_ fixture: Fixture) async throws -> String {
        let pending = await fixture.gateway.awaitApprovals(as: "alice")
        return try XCTUnwrap(pending.first?["id"]?.stringValue, fixture.gateway.log)
    }

    func assertSecurityHeaders(_ response: HTTPProbe.Response, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(response.status, 0, what, file: file, line: line)
        for (name, value) in Self.headers {
            XCTAssertEqual(response.header(name), value, "\(what): \(name)", file: file, line: line)
        }
    }

    // MARK: - Sign-in and sessions

    func testSignInWithAReviewerTokenMakesAnHttpOnlyStrictSessionAndAWrongTokenIsRefused() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        var browser = fixture.browser

        // Not signed in: every page sends to the sign-in page, with where to come back.
        let home = browser.get("/ui")
        XCTAssertEqual(home.status, 303)
        XCTAssertEqual(home.header("location"), "/ui/sign-in")
        let asked = browser.get("/ui/pending?tool=transfer")
        XCTAssertEqual(asked.status, 303)
        XCTAssertEqual(asked.header("location"), "/ui/sign-in?next=%2Fui%2Fpending%3Ftool%3Dtransfer")

        // The form: its fields as the contract names them, and a pre-session cookie equal to its csrf field.
        let form = browser.get("/ui/sign-in")
        XCTAssertEqual(form.status, 200)
        for piece in [
            #"<form id="sign-in" method="post" action="/ui/sign-in""#, #"<label for="token">Reviewer token</label>"#,
            #"<input id="token" name="token" type="password" autocomplete="off""#, #"<button type="submit">Sign in</button>"#,
            #"<meta name="viewport""#,
        ] {
            XCTAssertTrue(form.body.contains(piece), piece)
        }
        let preCookie = try XCTUnwrap(form.headers.first { $0.name == "set-cookie" && $0.value.hasPrefix("tollgate_ui_pre=") }?.value)
        XCTAssertTrue(preCookie.contains("HttpOnly") && preCookie.contains("SameSite=Strict") && preCookie.contains("Path=/ui"), preCookie)
        XCTAssertEqual(Self.csrf(in: form.body), browser.cookies["tollgate_ui_pre"])

        // A wrong token: 401 and the form again with the error in words; no session.
        let wrong = browser.post("/ui/sign-in", [("token", "tg_not-a-token"), ("csrf", Self.csrf(in: form.body)!)])
        XCTAssertEqual(wrong.status, 401, wrong.body)
        XCTAssertTrue(wrong.body.contains(#"<p role="alert" id="error""#) && wrong.body.contains("not a reviewer"), wrong.body)
        XCTAssertNil(browser.cookies["tollgate_ui"])
        // Anyone can send wrong tokens: the log gets at most a line a second of them, with the count.
        for _ in 0..<40 { XCTAssertEqual(browser.signIn("tg_wrong").status, 401) }
        try await Task.sleep(for: .milliseconds(1100))
        XCTAssertEqual(browser.signIn("tg_wrong").status, 401)
        let lines = fixture.gateway.log.split(separator: "\n").filter { $0.contains("a sign-in with a token of no reviewer was refused") }
        XCTAssertLessThanOrEqual(lines.count, 4, lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.contains("refused_since") }, lines.joined(separator: "\n"))
        // An agent's key is not a reviewer's token either.
        XCTAssertEqual(browser.signIn(fixture.gateway.keys["agent-b"]!).status, 401)

        // The right token: 303 to where the reviewer was going, and the session cookie.
        let signedIn = browser.signIn(fixture.gateway.tokens["alice"]!, next: "/ui/pending?tool=transfer")
        XCTAssertEqual(signedIn.status, 303, signedIn.body)
        XCTAssertEqual(signedIn.header("location"), "/ui/pending?tool=transfer")
        let sessionCookie = try XCTUnwrap(signedIn.headers.first { $0.name == "set-cookie" && $0.value.hasPrefix("tollgate_ui=") }?.value)
        XCTAssertTrue(sessionCookie.contains("; Path=/ui"), sessionCookie)
        XCTAssertTrue(sessionCookie.contains("; HttpOnly"), sessionCookie)
        XCTAssertTrue(sessionCookie.contains("; SameSite=Strict"), sessionCookie)
        XCTAssertFalse(sessionCookie.contains("Secure"), "plain http: no Secure: \(sessionCookie)")
        let value = try XCTUnwrap(browser.cookies["tollgate_ui"])
        XCTAssertEqual(value.count, 43)
        XCTAssertNil(browser.cookies["tollgate_ui_pre"], "the pre-session cookie is cleared")

        let page = browser.get("/ui/pending")
        XCTAssertEqual(page.status, 200, page.body)
        XCTAssertTrue(page.body.contains(#"<span id="reviewer">alice (reviewer)</span>"#), page.body)
        XCTAssertTrue(page.body.contains(#"<form id="sign-out" method="post" action="/ui/sign-out">"#))
        XCTAssertTrue(page.body.contains(#"<nav aria-label="Main">"#))
        XCTAssertEqual(browser.get("/ui").header("location"), "/ui/pending")

        // The database keeps the SHA-256 of the cookie, never the cookie.
        let connection = try PostgresConnection.connect(fixture.gateway.database)
        defer { connection.close() }
        let rows = try connection.query("SELECT cookie_hash, reviewer, csrf_token FROM tollgate.ui_sessions")
        XCTAssertEqual(rows.rows.count, 1)
        XCTAssertEqual(try rows[0].decode(String.self, 0), Hex.lowercase(SHA256.hash(data: Array(value.utf8))))
        XCTAssertEqual(try rows[0].decode(String.self, 1), "alice")
        let everything = try connection.query("SELECT t::text FROM tollgate.ui_sessions t")
        XCTAssertFalse(try everything[0].decode(String.self, 0).contains(value))

        // A link from another site comes without the SameSite=Strict cookie: the page loads itself again from here, and
        // then has the session.
        let fromSlack = HTTPProbe.request(
            port: fixture.gateway.port, method: "GET", path: "/ui/pending?tool=transfer", headers: [("Sec-Fetch-Site", "cross-site")])
        XCTAssertEqual(fromSlack?.status, 200)
        XCTAssertTrue(
            fromSlack?.body.contains(#"<meta http-equiv="refresh" content="0; url=/ui/pending?tool=transfer">"#) == true, fromSlack?.body ?? "")
        assertSecurityHeaders(try XCTUnwrap(fromSlack), "the reload page")
        XCTAssertEqual(browser.request("GET", "/ui/pending", headers: [("Sec-Fetch-Site", "same-origin")]).status, 200)
        XCTAssertEqual(
            HTTPProbe.request(port: fixture.gateway.port, method: "GET", path: "/ui/pending", headers: [("Sec-Fetch-Site", "same-origin")])?.status,
            303, "from this site, no cookie means signed out")
        let hostile = HTTPProbe.request(
            port: fixture.gateway.port, method: "GET", path: "/ui/pending?tool=%22%3E%3Cscript%3E", headers: [("Sec-Fetch-Site", "cross-site")])
        XCTAssertFalse(hostile?.body.contains("\"><script>") ?? true, hostile?.body ?? "")

        // `next` never leads off the reviewer page.
        for next in [
            "https://evil.example/", "//evil.example/ui/", "/ui/..//evil.example", "/\\evil.example", "/ui/%2f%2fevil.example",
            "/ui/%2e%2e/v1/approvals", "javascript:alert(1)", "/ui/pending\r\nSet-Cookie: x=1", "/v1/approvals", "/ui/sign-in",
        ] {
            var other = fixture.browser
            let answer = other.signIn(fixture.gateway.tokens["bob"]!, next: next)
            XCTAssertEqual(answer.status, 303, next)
            XCTAssertEqual(answer.header("location"), "/ui/pending", "next=\(next)")
        }
    }

    func testSessionsEndWhenIdleOrPastTheirLifetimeAndAtSignOut() async throws {
        let fixture = try await start(extraConfig: "ui:\n  session_idle_timeout: 1s\n  session_lifetime: 3s\n")
        defer { fixture.gateway.stop() }

        // Used every 0.4 s, a session outlives its idle time-out but not its lifetime.
        var busy = fixture.browser
        XCTAssertEqual(busy.signIn(fixture.gateway.tokens["alice"]!).status, 303)
        let started = ContinuousClock.now
        var lastGood = started
        while ContinuousClock.now - started < .seconds(5) {
            let answer = busy.get("/ui/pending/rows")
            if answer.status != 200 {
                XCTAssertEqual(answer.status, 303)
                XCTAssertEqual(answer.header("location"), "/ui/sign-in")
                break
            }
            lastGood = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(400))
        }
        let lived = lastGood - started
        XCTAssertGreaterThan(lived, .milliseconds(2000), "kept alive by use past the 1 s idle time-out")
        XCTAssertLessThan(lived, .milliseconds(3300), "ended by the 3 s lifetime")
        XCTAssertNil(busy.cookies["tollgate_ui"], "the ended session's cookie is cleared")

        // Left alone, a session ends after the idle time-out.
        var idle = fixture.browser
        XCTAssertEqual(idle.signIn(fixture.gateway.tokens["alice"]!).status, 303)
        XCTAssertEqual(idle.get("/ui/pending").status, 200)
        try await Task.sleep(for: .milliseconds(1300))
        XCTAssertEqual(idle.get("/ui/pending").status, 303)

        // Sign-out deletes the session: the old cookie, replayed, is refused.
        var leaving = fixture.browser
        XCTAssertEqual(leaving.signIn(fixture.gateway.tokens["bob"]!).status, 303)
        let page = leaving.get("/ui/pending")
        let stolen = try XCTUnwrap(leaving.cookies["tollgate_ui"])
        let out = leaving.post("/ui/sign-out", [("csrf", Self.csrf(in: page.body) ?? "")])
        XCTAssertEqual(out.status, 303, out.body)
        XCTAssertEqual(out.header("location"), "/ui/sign-in")
        XCTAssertTrue(out.headers.contains { $0.name == "set-cookie" && $0.value.hasPrefix("tollgate_ui=;") && $0.value.contains("Max-Age=0") })
        var thief = fixture.browser
        thief.cookies["tollgate_ui"] = stolen
        XCTAssertEqual(thief.get("/ui/pending").status, 303)
        let connection = try PostgresConnection.connect(fixture.gateway.database)
        defer { connection.close() }
        XCTAssertEqual(try connection.query("SELECT count(*)::int FROM tollgate.ui_sessions WHERE reviewer = 'bob'")[0].decode(Int.self, 0), 0)
    }

    func testAReviewerWhoseTokenChangedIsSignedOutAndCookiesAreSecureOverHTTPS() async throws {
        let fixture = try await start(extraConfig: "public_url: https://tollgate.example.com\n")
        defer { fixture.gateway.stop() }
        var browser = fixture.browser
        let signedIn = browser.signIn(fixture.gateway.tokens["alice"]!)
        XCTAssertEqual(signedIn.status, 303)
        let cookie = try XCTUnwrap(signedIn.headers.first { $0.name == "set-cookie" && $0.value.hasPrefix("tollgate_ui=") }?.value)
        XCTAssertTrue(cookie.hasSuffix("; Secure"), cookie)
        XCTAssertEqual(browser.get("/ui/pending").status, 200)
        // The session remembers the token it was made with: once the configuration has another, it is refused.
        let connection = try PostgresConnection.connect(TestCluster.owner(of: fixture.gateway.database))
        defer { connection.close() }
        try connection.execute("UPDATE tollgate.ui_sessions SET token_hash = 'sha256:' || repeat('0', 64)")
        XCTAssertEqual(browser.get("/ui/pending").status, 303)
        XCTAssertEqual(try connection.query("SELECT count(*)::int FROM tollgate.ui_sessions")[0].decode(Int.self, 0), 0)
        // The public origin is the gateway's own for forms.
        var other = fixture.browser
        other.extra = [("Origin", "https://tollgate.example.com"), ("Sec-Fetch-Site", "same-origin")]
        XCTAssertEqual(other.signIn(fixture.gateway.tokens["bob"]!).status, 303)
        // One reviewer keeps at most 20 sessions: the 21st sign-in ends the oldest.
        var first = fixture.browser
        XCTAssertEqual(first.signIn(fixture.gateway.tokens["dave"]!).status, 303)
        for _ in 0..<20 {
            var another = fixture.browser
            XCTAssertEqual(another.signIn(fixture.gateway.tokens["dave"]!).status, 303)
        }
        XCTAssertEqual(try connection.query("SELECT count(*)::int FROM tollgate.ui_sessions WHERE reviewer = 'dave'")[0].decode(Int.self, 0), 20)
        XCTAssertEqual(first.get("/ui/pending").status, 303, "the oldest session ended")
    }

    // MARK: - Forms from elsewhere

    func testFormsWithoutTheSessionsCSRFTokenOrFromAnotherSiteAreRefused() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let run = hold(fixture, amount: 21)
        let id = try await pendingID(fixture)
        var browser = fixture.browser
        XCTAssertEqual(browser.signIn(fixture.gateway.tokens["alice"]!).status, 303)
        let page = browser.get("/ui/approvals/\(id)")
        let csrf = try XCTUnwrap(Self.csrf(in: page.body))
        let approve = "/ui/approvals/\(id)/approve"

        let attempts: [(String, [(String, String)], [(String, String)])] = [
            ("no csrf field", [("comment", "ok")], []),
            ("a wrong csrf", [("csrf", String(repeating: "A", count: 43)), ("comment", "ok")], []),
            ("an empty csrf", [("csrf", "")], []),
            ("another site's Origin", [("csrf", csrf)], [("Origin", "https://evil.example")]),
            ("Origin null", [("csrf", csrf)], [("Origin", "null")]),
            ("Sec-Fetch-Site cross-site", [("csrf", csrf)], [("Sec-Fetch-Site", "cross-site")]),
            ("Sec-Fetch-Site same-site", [("csrf", csrf)], [("Sec-Fetch-Site", "same-site")]),
            ("Origin null, cross-site", [("csrf", csrf)], [("Origin", "null"), ("Sec-Fetch-Site", "cross-site")]),
        ]
        for (what, fields, headers) in attempts {
            let answer = browser.post(approve, fields, headers: headers)
            XCTAssertEqual(answer.status, 403, "\(what): \(answer.body)")
            XCTAssertTrue(answer.body.contains(#"<p role="alert" id="error""#), what)
            assertSecurityHeaders(answer, what)
        }
        // A cross-site page's form as a browser sends it: no cookie at all (SameSite=Strict), another Origin.
        let raw = "csrf=\(csrf)&comment=pwned"
        let forged = HTTPProbe.raw(
            port: fixture.gateway.port,
            request: Array(
                ("POST \(approve) HTTP/1.1\r\nHost: 127.0.0.1:\(fixture.gateway.port)\r\nOrigin: https://evil.example\r\n"
                    + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(raw.utf8.count)\r\nConnection: close\r\n\r\n\(raw)").utf8)
        )
        XCTAssertEqual(forged?.status, 403)
        // The sign-in form without its pre-session cookie, or with another csrf.
        var stranger = fixture.browser
        XCTAssertEqual(stranger.post("/ui/sign-in", [("token", fixture.gateway.tokens["bob"]!), ("csrf", csrf)]).status, 403)
        _ = stranger.get("/ui/sign-in")
        XCTAssertEqual(stranger.post("/ui/sign-in", [("token", fixture.gateway.tokens["bob"]!), ("csrf", csrf)]).status, 403)
        XCTAssertNil(stranger.cookies["tollgate_ui"])
        // Sign-out too needs the token.
        XCTAssertEqual(browser.post("/ui/sign-out", []).status, 403)
        XCTAssertEqual(browser.get("/ui/pending").status, 200, "still signed in")

        // Nothing was decided; the same form, from this page, is acted on.
        XCTAssertEqual(fixture.gateway.api("GET", "/v1/approvals/\(id)", as: "carol").body?["version"]?.doubleValue, 1)
        // (A browser under the page's Referrer-Policy: no-referrer sends its own forms with Origin: null, same-origin.)
        var chromium = fixture.browser
        chromium.extra = [("Origin", "null"), ("Sec-Fetch-Site", "same-origin")]
        XCTAssertEqual(chromium.signIn(fixture.gateway.tokens["bob"]!).status, 303)
        let real = browser.post(
            approve, [("csrf", csrf), ("comment", "ok")],
            headers: [("Origin", "http://127.0.0.1:\(fixture.gateway.port)"), ("Sec-Fetch-Site", "same-origin")])
        XCTAssertEqual(real.status, 303, real.body)
        let result = try await run.value
        XCTAssertEqual(result.step(0)?["result"]?["isError"]?.boolValue, false, result.description)
    }

    // MARK: - Deciding from the page

    func testApprovingFromTheFormReleasesTheHeldCallWhichRunsOnce() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let run = hold(fixture, amount: 31)
        let id = try await pendingID(fixture)
        var browser = fixture.browser
        XCTAssertEqual(browser.signIn(fixture.gateway.tokens["alice"]!).status, 303)

        let pending = browser.get("/ui/pending")
        XCTAssertTrue(pending.body.contains(#"<tr data-approval-id="\#(id)">"#), pending.body)
        XCTAssertTrue(pending.body.contains(#"<a href="/ui/approvals/\#(id)">transfer</a>"#), pending.body)
        XCTAssertTrue(pending.body.contains("0 of 1") && pending.body.contains("money moves"), pending.body)
        XCTAssertTrue(
            pending.body.contains(#"<td data-label="Risk"><span class="risk">financial</span>, <span class="risk-level risk-"#), pending.body)
        let rows = browser.get("/ui/pending/rows")
        XCTAssertTrue(rows.body.hasPrefix("<tr data-approval-id=\"\(id)\">"), rows.body)
        XCTAssertFalse(browser.get("/ui/pending?agent=agent-b").body.contains("data-approval-id=\"\(id)\""))

        let page = browser.get("/ui/approvals/\(id)")
        XCTAssertEqual(page.status, 200, page.body)
        XCTAssertTrue(page.body.contains(#"<section id="approval" data-status="pending""#), page.body)
        XCTAssertTrue(page.body.contains(#"<form id="approve" method="post" action="/ui/approvals/\#(id)/approve""#))
        XCTAssertTrue(page.body.contains(#"<form id="deny" method="post" action="/ui/approvals/\#(id)/deny""#))
        XCTAssertTrue(page.body.contains(#"<textarea id="reason" name="reason" rows="3" maxlength="2000" required>"#))
        XCTAssertTrue(page.body.contains(#"<pre id="arguments""#) && page.body.contains("&quot;amount&quot;: 31"), page.body)
        XCTAssertEqual(fixture.runs(amount: 31), 0)

        let decided = browser.post("/ui/approvals/\(id)/approve", [("csrf", Self.csrf(in: page.body)!), ("comment", "matches invoice 1182")])
        XCTAssertEqual(decided.status, 303, decided.body)
        XCTAssertEqual(decided.header("location"), "/ui/approvals/\(id)?done=approved")
        let result = try await run.value
        XCTAssertEqual(result.step(0)?["result"]?["structuredContent"]?["status"]?.stringValue, "transferred", result.description)
        XCTAssertEqual(fixture.runs(amount: 31), 1)

        // The page after: the notice, the status, and the history from the log, the call's outcome included.
        _ = try await fixture.gateway.events(type: ToolCallCompleted.type, atLeast: 1)
        let after = browser.get("/ui/approvals/\(id)?done=approved")
        XCTAssertTrue(after.body.contains(#"<p role="status" id="notice""#), after.body)
        XCTAssertTrue(after.body.contains(#"data-status="consumed""#), after.body)
        XCTAssertFalse(after.body.contains(#"<form id="approve""#))
        for kind in ["requested", "granted", "consumed", "completed"] {
            XCTAssertTrue(after.body.contains(#"<li data-event="\#(kind)">"#), "\(kind): \(after.body)")
        }
        XCTAssertTrue(after.body.contains("matches invoice 1182") && after.body.contains("ended: success"), after.body)
        XCTAssertFalse(browser.get("/ui/pending/rows").body.contains(id), "a decided request leaves the pending rows")
        // Approving again: the API's refusal, in words.
        let again = browser.post("/ui/approvals/\(id)/approve", [("csrf", Self.csrf(in: page.body)!)])
        XCTAssertEqual(again.status, 409, again.body)
        XCTAssertTrue(again.body.contains("already decided") && again.body.contains("(already_decided)"), again.body)
    }

    func testDenyNeedsAReasonWhichReachesTheAgentAndTheRulesOfTheAPIAreShownInWords() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        let run = hold(fixture, amount: 41)
        let id = try await pendingID(fixture)

        // The auditor sees no forms, and a forged POST with a valid session and token is refused.
        var carol = fixture.browser
        XCTAssertEqual(carol.signIn(fixture.gateway.tokens["carol"]!).status, 303)
        let read = carol.get("/ui/approvals/\(id)")
        XCTAssertEqual(read.status, 200)
        XCTAssertFalse(read.body.contains(#"<form id="approve""#) || read.body.contains(#"<form id="deny""#), read.body)
        XCTAssertTrue(read.body.contains(#"<span id="reviewer">carol (auditor)</span>"#))
        let forged = carol.post("/ui/approvals/\(id)/approve", [("csrf", Self.csrf(in: read.body)!)])
        XCTAssertEqual(forged.status, 403, forged.body)
        XCTAssertTrue(forged.body.contains("may read approvals, not decide them") && forged.body.contains("(forbidden)"), forged.body)

        // The agent itself, as a reviewer: no self-approval.
        var agent = fixture.browser
        XCTAssertEqual(agent.signIn(fixture.gateway.tokens["agent-a"]!).status, 303)
        let own = agent.get("/ui/approvals/\(id)")
        let selfApproval = agent.post("/ui/approvals/\(id)/approve", [("csrf", Self.csrf(in: own.body)!)])
        XCTAssertEqual(selfApproval.status, 403, selfApproval.body)
        XCTAssertTrue(selfApproval.body.contains("made this call and cannot approve or deny it (self_approval)"), selfApproval.body)
        XCTAssertTrue(selfApproval.body.contains(#"<p role="alert" id="error""#))

        // A deny without a reason, or a blank one, is refused in words and keeps the request pending.
        var bob = fixture.browser
        XCTAssertEqual(bob.signIn(fixture.gateway.tokens["bob"]!).status, 303)
        let page = bob.get("/ui/approvals/\(id)")
        let csrf = try XCTUnwrap(Self.csrf(in: page.body))
        for fields in [[("csrf", csrf)], [("csrf", csrf), ("reason", "   ")]] {
            let answer = bob.post("/ui/approvals/\(id)/deny", fields)
            XCTAssertEqual(answer.status, 400, answer.body)
            XCTAssertTrue(answer.body.contains("a denial needs a reason") && answer.body.contains("(invalid_body)"), answer.body)
            XCTAssertTrue(answer.body.contains(#"data-status="pending""#))
        }
        // A reason over 2000 characters is refused, and what was typed is kept in the form.
        let long = bob.post("/ui/approvals/\(id)/deny", [("csrf", csrf), ("reason", String(repeating: "é", count: 2001))])
        XCTAssertEqual(long.status, 400, long.body)
        XCTAssertTrue(long.body.contains("at most 2000 characters"), long.body)

        let denied = bob.post("/ui/approvals/\(id)/deny", [("csrf", csrf), ("reason", "not during the <freeze>")])
        XCTAssertEqual(denied.status, 303, denied.body)
        let result = try await run.value
        let answer = result.step(0)?["result"]
        XCTAssertEqual(answer?["isError"]?.boolValue, true, result.description)
        let text = answer?["content"]?.arrayValue?.first?.stringValue ?? ""
        XCTAssertTrue(text.contains("not during the <freeze>") && text.contains("bob"), text)
        XCTAssertEqual(fixture.runs(amount: 41), 0)
        let after = bob.get("/ui/approvals/\(id)?done=denied")
        XCTAssertTrue(after.body.contains(#"data-status="denied""#) && after.body.contains("not during the &lt;freeze&gt;"), after.body)
        XCTAssertTrue(after.body.contains(#"<li data-event="denied">"#))
    }

    func testAQuorumOfTwoShowsWhoApprovedAndRunsOnlyOnceASecondReviewerApproves() async throws {
        let fixture = try await start(policy: ApprovalFlowTests.policy(quorum: 2))
        defer { fixture.gateway.stop() }
        let run = hold(fixture, amount: 51)
        let id = try await pendingID(fixture)
        var alice = fixture.browser
        XCTAssertEqual(alice.signIn(fixture.gateway.tokens["alice"]!).status, 303)
        let first = alice.get("/ui/approvals/\(id)")
        let csrf = try XCTUnwrap(Self.csrf(in: first.body))
        XCTAssertEqual(alice.post("/ui/approvals/\(id)/approve", [("csrf", csrf)]).status, 303)
        let after = alice.get("/ui/approvals/\(id)?done=approved")
        XCTAssertTrue(after.body.contains(#"data-status="pending""#) && after.body.contains("1 of 2"), after.body)
        XCTAssertTrue(after.body.contains(#"<p class="notice" id="approved-by-you">"#), after.body)
        XCTAssertFalse(after.body.contains(#"<form id="approve""#), "no second approve form for alice")
        XCTAssertTrue(alice.get("/ui/pending/rows").body.contains("by alice"))
        let again = alice.post("/ui/approvals/\(id)/approve", [("csrf", csrf)])
        XCTAssertEqual(again.status, 409, again.body)
        XCTAssertTrue(again.body.contains("(already_granted)"), again.body)
        XCTAssertEqual(fixture.runs(amount: 51), 0, "one approval of two runs nothing")

        var bob = fixture.browser
        XCTAssertEqual(bob.signIn(fixture.gateway.tokens["bob"]!).status, 303)
        let page = bob.get("/ui/approvals/\(id)")
        XCTAssertTrue(page.body.contains(#"<form id="approve""#))
        XCTAssertEqual(bob.post("/ui/approvals/\(id)/approve", [("csrf", Self.csrf(in: page.body)!)]).status, 303)
        let result = try await run.value
        XCTAssertEqual(result.step(0)?["result"]?["isError"]?.boolValue, false, result.description)
        XCTAssertEqual(fixture.runs(amount: 51), 1)
    }

    // MARK: - Headers and hostile input

    func testEveryUIResponseCarriesTheSecurityHeaders() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        var anonymous = fixture.browser
        var browser = fixture.browser
        XCTAssertEqual(browser.signIn(fixture.gateway.tokens["alice"]!).status, 303)
        let csrf = try XCTUnwrap(Self.csrf(in: browser.get("/ui/pending").body))
        let unknown = UUID().uuidString.lowercased()
        let cases: [(String, HTTPProbe.Response, Int)] = [
            ("GET /ui anonymous", anonymous.get("/ui"), 303),
            ("GET /ui/sign-in", anonymous.get("/ui/sign-in"), 200),
            ("GET /ui/pending anonymous", anonymous.get("/ui/pending"), 303),
            ("GET /ui/static/app.js", anonymous.get("/ui/static/app.js"), 200),
            ("GET /ui/static/app.css", anonymous.get("/ui/static/app.css"), 200),
            ("GET /ui/nothing-here", anonymous.get("/ui/nothing-here"), 404),
            ("GET /ui/static/../../etc/passwd", anonymous.get("/ui/static/../../etc/passwd"), 404),
            ("DELETE /ui/pending", anonymous.request("DELETE", "/ui/pending"), 405),
            ("HEAD /ui/sign-in", anonymous.request("HEAD", "/ui/sign-in"), 200),
            ("GET /ui", browser.get("/ui"), 303),
            ("GET /ui/pending", browser.get("/ui/pending"), 200),
            ("GET /ui/pending/rows", browser.get("/ui/pending/rows"), 200),
            ("GET /ui/history", browser.get("/ui/history"), 200),
            ("GET /ui/overview", browser.get("/ui/overview"), 200),
            ("GET /ui/approvals/unknown", browser.get("/ui/approvals/\(unknown)"), 404),
            ("GET /ui/approvals/not-a-uuid", browser.get("/ui/approvals/not-a-uuid"), 404),
            ("POST unknown approve", browser.post("/ui/approvals/\(unknown)/approve", [("csrf", csrf)]), 404),
            ("POST too large", browser.request("POST", "/ui/approvals/\(unknown)/deny", body: String(repeating: "a", count: 17_000)), 413),
            ("POST not a form", browser.request("POST", "/ui/sign-out", body: "{}", headers: [("Content-Type", "application/json")]), 415),
            ("POST bad escape", browser.request("POST", "/ui/sign-out", body: "csrf=%zz"), 400),
            ("GET /ui/pending bad filter", browser.get("/ui/pending?tool=\(String(repeating: "t", count: 201))"), 400),
        ]
        for (what, response, status) in cases {
            XCTAssertEqual(response.status, status, "\(what): \(response.body.prefix(400))")
            assertSecurityHeaders(response, what)
        }
        let script = anonymous.get("/ui/static/app.js")
        XCTAssertEqual(script.header("content-type"), "text/javascript; charset=utf-8")
        XCTAssertTrue(script.body.contains("/ui/pending/rows") || script.body.contains("data-rows"))
        // No inline script or style in any page.
        for page in [anonymous.get("/ui/sign-in").body, browser.get("/ui/pending").body] {
            XCTAssertFalse(page.contains("<script>") || page.contains("<style") || page.contains("style=") || page.contains("onclick"), page)
        }
    }

    func testHostileInputIsRefusedInWordsOrShownEscapedAndVisible() async throws {
        let fixture = try await start()
        defer { fixture.gateway.stop() }
        // A request with hostile text everywhere an agent, a tool or a policy could put it.
        let client = PostgresClient(configuration: fixture.gateway.database)
        let store = EventStore(client: client)
        let hostileTool = "<script>alert(1)</script>\u{202E}lanif"
        let arguments: JSONValue = [
            "to": "<img src=x onerror=alert(1)>", "account": "acct_1\u{202E}9999", "note": "zero\u{200B}width\nnew line \"quoted\" & more",
        ]
        let requested = ApprovalRequested(
            approvalID: UUID.random(), callID: UUID.random(), agent: "agent-b", grant: "grant-b", session: "s", server: "pay",
            tool: hostileTool, arguments: arguments, argumentsHash: String(repeating: "a", count: 64), argumentsStorage: "full",
            policyHash: String(repeating: "b", count: 64), rule: "tools.<b>x</b>", reason: "\"><svg onload=alert(1)>", quorum: 1, reviewers: [],
            category: "financial\"><x", requestedAt: Date(), expiresAt: Date().addingTimeInterval(3600))
        _ = try await ApprovalBook(store: store).admit(call: nil, request: requested, reservations: [], now: Date())
        store.stop()
        await client.shutdown()
        let id = requested.approvalID.lowercasedString

        var browser = fixture.browser
        XCTAssertEqual(browser.signIn(fixture.gateway.tokens["alice"]!).status, 303)
        let pending = browser.get("/ui/pending")
        let page = browser.get("/ui/approvals/\(id)")
        XCTAssertEqual(page.status, 200, page.body)
        for html in [pending.body, page.body] {
            for raw in ["<script>alert", "<img src", "<svg onload", "<b>x</b>", "\u{202E}", "\u{200B}", "\"><x"] {
                XCTAssertFalse(html.contains(raw), "\(raw) must not reach the page as is")
            }
            XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), html)
            XCTAssertTrue(html.contains(#"<mark class="invisible""#) && html.contains("\\u202E"), html)
        }
        XCTAssertTrue(page.body.contains(#"<p class="warning" id="invisibles">"#), page.body)
        XCTAssertTrue(page.body.contains("acct_1<mark"), page.body)
        XCTAssertTrue(page.body.contains("\\u200B") && page.body.contains("zero") && page.body.contains("\\n"), page.body)

        // Filters are reflected escaped.
        let filtered = browser.get("/ui/pending?tool=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
        XCTAssertEqual(filtered.status, 200)
        XCTAssertFalse(filtered.body.contains("\"><script>"), filtered.body)

        // Bodies: too large (by Content-Length and by what is sent), malformed, duplicated, unknown fields, a NUL.
        let csrf = try XCTUnwrap(Self.csrf(in: page.body))
        let deny = "/ui/approvals/\(id)/deny"
        let bodies: [(String, String, Int)] = [
            ("17 KiB", "csrf=\(csrf)&reason=" + String(repeating: "x", count: 17_000), 413),
            ("a bad escape", "csrf=\(csrf)&reason=%G0", 400),
            ("a cut escape", "csrf=\(csrf)&reason=abc%4", 400),
            ("not UTF-8", "csrf=\(csrf)&reason=%C3%28", 400),
            ("an overlong encoding", "csrf=\(csrf)&reason=%C0%AF", 400),
            ("a field twice", "csrf=\(csrf)&reason=a&reason=b", 400),
            ("an unknown field", "csrf=\(csrf)&reason=a&status=approved", 400),
            ("a NUL", "csrf=\(csrf)&reason=a%00b", 400),
        ]
        for (what, body, status) in bodies {
            let answer = browser.request("POST", deny, body: body)
            XCTAssertEqual(answer.status, status, "\(what): \(answer.body.prefix(300))")
            XCTAssertTrue(answer.body.contains(#"<p role="alert" id="error""#), what)
        }
        // A body bigger than it says, sent with a small Content-Length: read only as far as it says.
        let lying = HTTPProbe.raw(
            port: fixture.gateway.port,
            request: Array(
                ("POST \(deny) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                    + "Cookie: tollgate_ui=\(browser.cookies["tollgate_ui"] ?? "")\r\n"
                    + "Content-Length: 999999999\r\nConnection: close\r\n\r\ncsrf=x").utf8))
        XCTAssertEqual(lying?.status, 413)

        // Cookies: huge, garbage, many, a well-formed one of no session: all just signed out.
        let cookieCases = [
            String(repeating: "a", count: 6000), "../../etc/passwd", "\"><script>", String(repeating: "A", count: 43), "x;tollgate_ui=y",
            (0..<200).map { "c\($0)=\($0)" }.joined(separator: "; "),
        ]
        for value in cookieCases {
            let answer = HTTPProbe.request(
                port: fixture.gateway.port, method: "GET", path: "/ui/pending", headers: [("Cookie", "tollgate_ui=\(value)")])
            XCTAssertEqual(answer?.status, 303, value.prefix(40).description)
            XCTAssertEqual(answer?.header("location").map { $0.hasPrefix("/ui/sign-in") }, true)
        }

        // Ids that are not ids.
        for path in [
            "/ui/approvals/..%2f..%2fetc%2fpasswd", "/ui/approvals/'%20OR%201=1--", "/ui/approvals/\(id)%00", "/ui/approvals/\(id.uppercased())x",
            "/ui/approvals/%E2%80%AE\(id)",
        ] {
            let answer = browser.get(path)
            XCTAssertEqual(answer.status, 404, "\(path): \(answer.body.prefix(300))")
        }
        // The request is still pending and undecided.
        XCTAssertEqual(fixture.gateway.api("GET", "/v1/approvals/\(id)", as: "carol").body?["version"]?.doubleValue, 1)
    }
}
