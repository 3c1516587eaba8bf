import Foundation
import HTTPTypes
import Hummingbird
import TollgateCore
import TollgatePostgres

/// Signing in and out, and finding the session of a request.
extension ReviewerPage {
    /// The session cookie: 32 random bytes, base64url; the database keeps its SHA-256.
    static let sessionCookie = "tollgate_ui"
    /// The pre-session cookie of the sign-in form, whose value the form carries as its `csrf` field.
    static let preSessionCookie = "tollgate_ui_pre"
    /// How long a sign-in form may wait to be sent.
    static let preSessionSeconds = 3600
    /// The most sessions one reviewer keeps: signing in once more ends the oldest (so the table stays small whatever
    /// a reviewer's browsers do).
    static let maxSessionsPerReviewer = 20

    // MARK: - Finding the session

    /// The live session of the request's `tollgate_ui` cookie, with its reviewer as the configuration has them now; `nil`
    /// when there is no well-formed cookie, no such session, it has ended (idle or past its lifetime), or its reviewer
    /// is no longer configured with the token they signed in with (then the session is deleted).
    func session(for request: Request) async throws -> ReviewerSession? {
        guard let value = Self.cookie(Self.sessionCookie, in: request), ReviewerPageTokens.isWellFormed(value) else { return nil }
        let hash = ReviewerPageTokens.hash(value)
        let now = Date()
        guard
            let stored = try await sessions.touch(
                cookieHash: hash, now: now, idleSince: now - settings.sessionIdleTimeout.timeInterval,
                createdSince: now - settings.sessionLifetime.timeInterval)
        else { return nil }
        guard let reviewer = reviewers.first(where: { $0.id == stored.reviewer }), reviewer.tokenHash == stored.tokenHash else {
            try await sessions.delete(cookieHash: hash)
            logger.notice(
                "reviewer page: a session's reviewer is no longer configured with its token; signed out", metadata: ["reviewer": "\(stored.reviewer)"]
            )
            return nil
        }
        return ReviewerSession(
            reviewer: reviewer, csrfToken: stored.csrfToken, cookieHash: hash, createdAt: stored.createdAt, lastSeenAt: stored.lastSeenAt)
    }

    /// Runs `body` for a signed-in reviewer; without a session, a 303 to the sign-in page (with `next`, for a GET). With
    /// `form`, first refuses a cross-site request (403) and, after the session, reads nothing: `body` reads the form
    /// and checks its CSRF token with ``checkForm(_:session:allowed:)``.
    ///
    /// Refusals thrown as ``ReviewerPageProblem`` become error pages; any other error is a 503 page.
    func withSession(_ request: Request, form: Bool = false, _ body: (ReviewerSession) async throws -> Response) async -> Response {
        if form, let problem = crossSiteProblem(request) {
            refusals.refused("reviewer page: a cross-site form was refused", metadata: ["path": "\(request.uri.path.prefix(200))"])
            return Self.problemPage(problem, session: nil)
        }
        let session: ReviewerSession
        do {
            guard let found = try await self.session(for: request) else { return signInRedirect(request) }
            session = found
        } catch {
            return Self.unavailable(error, logger: logger)
        }
        do {
            return try await body(session)
        } catch let problem as ReviewerPageProblem {
            return Self.problemPage(problem, session: session)
        } catch {
            return Self.unavailable(error, session: session, logger: logger)
        }
    }

    /// Reads a signed-in page's form and checks its `csrf` field against the session's token.
    func checkForm(_ request: Request, session: ReviewerSession, allowed: Set<String>) async throws(ReviewerPageProblem) -> ReviewerPageForm {
        let form = try await ReviewerPageForm.read(request, allowed: allowed.union(["csrf"]))
        guard let csrf = form["csrf"], ReviewerPageTokens.equal(csrf, session.csrfToken) else {
            logger.warning(
                "reviewer page: a form without this session's CSRF token was refused",
                metadata: ["path": "\(request.uri.path)", "reviewer": "\(session.reviewer.id)"])
            throw Self.csrfProblem
        }
        return form
    }

    static var csrfProblem: ReviewerPageProblem {
        ReviewerPageProblem(
            .forbidden, "This form is not from your current session, so it was not acted on. Reload the page and try again (CSRF check failed).",
            code: "csrf")
    }

    /// 303 to the sign-in page, with the page asked for as `next` (for a GET of a page), clearing a cookie that named no
    /// live session.
    ///
    /// A link followed from another site (a webhook's link in Slack or a mail) comes without the `SameSite=Strict`
    /// cookie even when the reviewer is signed in: such a GET without a cookie gets a page that loads the same address
    /// again from this site (a `<meta http-equiv="refresh">`, no script), which the browser sends with the cookie; only
    /// then does a reviewer without a session go to the sign-in page.
    func signInRedirect(_ request: Request) -> Response {
        var location = "/ui/sign-in"
        let path = request.uri.path
        if request.method == .get, path != "/ui/pending/rows" {
            let query = request.uri.query.map { "?" + $0 } ?? ""
            if let next = Self.safeNext(path + query) {
                location += "?next=" + HTML.queryValue(next)
                if request.headers[HTTPField.Name("Sec-Fetch-Site")!]?.lowercased() == "cross-site",
                    Self.cookie(Self.sessionCookie, in: request) == nil
                {
                    return Self.html(.ok, Self.reloadFromHere(next))
                }
            }
        }
        var headers: HTTPFields = [:]
        if Self.cookie(Self.sessionCookie, in: request) != nil {
            headers.append(HTTPField(name: .setCookie, value: clearedCookie(Self.sessionCookie)))
        }
        return Self.redirect(location, headers: headers)
    }

    /// A page that loads `path` (a ``safeNext(_:)`` path) again, as a navigation from this site.
    static func reloadFromHere(_ path: String) -> String {
        let target = HTML.escape(path)
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=\(target)">
            <meta name="referrer" content="no-referrer"><title>Opening · Tollgate</title></head>
            <body><p><a href="\(target)">Open the page</a></p></body></html>

            """
    }

    // MARK: - Sign-in

    func signInPage(_ request: Request) async -> Response {
        do {
            if try await session(for: request) != nil {
                return Self.redirect(Self.safeNext(request.uri.queryParameters["next"].map(String.init)) ?? "/ui/pending")
            }
        } catch {
            return Self.unavailable(error, logger: logger)
        }
        let next = Self.safeNext(request.uri.queryParameters["next"].map(String.init))
        return signInForm(status: .ok, next: next, error: nil)
    }

    /// The sign-in form with a fresh pre-session token in its cookie and its `csrf` field.
    func signInForm(status: HTTPResponse.Status, next: String?, error: String?) -> Response {
        let pre = ReviewerPageTokens.make()
        var body = "<h1>Sign in</h1>\n"
        if let error { body += ReviewerPageLayout.errorParagraph(error) + "\n" }
        if reviewers.isEmpty {
            body += "<p>No reviewers are configured: add <code>reviewers:</code> to the gateway's configuration (docs/approvals.md).</p>\n"
        }
        body += """
            <form id="sign-in" method="post" action="/ui/sign-in" class="stack">
            <input type="hidden" name="csrf" value="\(pre)">
            \(next.map { "<input type=\"hidden\" name=\"next\" value=\"\(HTML.escape($0))\">" } ?? "")
            <label for="token">Reviewer token</label>
            <input id="token" name="token" type="password" autocomplete="off" required maxlength="512" spellcheck="false" aria-describedby="token-hint">
            <p class="hint" id="token-hint">The token from <code>tollgate keys new NAME --reviewer ROLE</code>, the same one the approvals API takes.</p>
            <button type="submit">Sign in</button>
            </form>
            """
        var headers: HTTPFields = [:]
        headers.append(HTTPField(name: .setCookie, value: cookie(Self.preSessionCookie, pre, maxAge: Self.preSessionSeconds)))
        return Self.html(status, ReviewerPageLayout.page(title: "Sign in", session: nil, body: body), headers: headers)
    }

    func signIn(_ request: Request) async -> Response {
        if let problem = crossSiteProblem(request) {
            refusals.refused("reviewer page: a cross-site sign-in was refused")
            return Self.problemPage(problem, session: nil)
        }
        let form: ReviewerPageForm
        do {
            form = try await ReviewerPageForm.read(request, allowed: ["token", "csrf", "next"])
        } catch {
            return Self.problemPage(error, session: nil)
        }
        let next = Self.safeNext(form["next"])
        guard let pre = Self.cookie(Self.preSessionCookie, in: request), ReviewerPageTokens.isWellFormed(pre), let csrf = form["csrf"],
            ReviewerPageTokens.equal(csrf, String(pre))
        else {
            refusals.refused("reviewer page: a sign-in without its form's CSRF token was refused")
            return signInForm(
                status: .forbidden, next: next,
                error: "This sign-in form has expired or did not come from this page, so it was not acted on. Sign in again (CSRF check failed).")
        }
        guard let token = form["token"], token.utf8.count <= 512, let reviewer = directory.reviewer(forToken: token) else {
            refusals.refused("reviewer page: a sign-in with a token of no reviewer was refused")
            return signInForm(status: .unauthorized, next: next, error: "That token is not a reviewer's token. Check it and try again.")
        }
        let value = ReviewerPageTokens.make()
        let now = Date()
        let stored = ReviewerSessionStore.Session(
            cookieHash: ReviewerPageTokens.hash(value[...]), reviewer: reviewer.id, tokenHash: reviewer.tokenHash,
            csrfToken: ReviewerPageTokens.make(), createdAt: now, lastSeenAt: now)
        do {
            if let old = Self.cookie(Self.sessionCookie, in: request), ReviewerPageTokens.isWellFormed(old) {
                try await sessions.delete(cookieHash: ReviewerPageTokens.hash(old))
            }
            try await sessions.deleteEnded(
                idleSince: now - settings.sessionIdleTimeout.timeInterval, createdSince: now - settings.sessionLifetime.timeInterval, limit: 100)
            try await sessions.create(stored)
            try await sessions.deleteOldest(reviewer: reviewer.id, keeping: Self.maxSessionsPerReviewer)
        } catch {
            return Self.unavailable(error, logger: logger)
        }
        logger.notice("reviewer page: signed in", metadata: ["reviewer": "\(reviewer.id)", "role": "\(reviewer.role.rawValue)"])
        var headers: HTTPFields = [:]
        headers.append(HTTPField(name: .setCookie, value: cookie(Self.sessionCookie, value, maxAge: Int(settings.sessionLifetime.timeInterval))))
        headers.append(HTTPField(name: .setCookie, value: clearedCookie(Self.preSessionCookie)))
        return Self.redirect(next ?? "/ui/pending", headers: headers)
    }

    // MARK: - Sign-out

    func signOut(_ request: Request) async -> Response {
        await withSession(request, form: true) { session in
            _ = try await checkForm(request, session: session, allowed: [])
            try await sessions.delete(cookieHash: session.cookieHash)
            logger.notice("reviewer page: signed out", metadata: ["reviewer": "\(session.reviewer.id)"])
            var headers: HTTPFields = [:]
            headers.append(HTTPField(name: .setCookie, value: clearedCookie(Self.sessionCookie)))
            return Self.redirect("/ui/sign-in", headers: headers)
        }
    }

    // MARK: - Cookies

    /// A cookie of the page: only for `/ui`, never readable by script, never sent with a request from another site,
    /// and `Secure` when the page is served over https.
    func cookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/ui; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secureCookies ? "; Secure" : "")
    }

    func clearedCookie(_ name: String) -> String {
        cookie(name, "", maxAge: 0)
    }

    /// The first value of cookie `name` in the request's `Cookie` headers (at most 16 KiB of them are read).
    static func cookie(_ name: String, in request: Request) -> Substring? {
        var read = 0
        for header in request.headers[values: .cookie] {
            read += header.utf8.count
            if read > 16 * 1024 { return nil }
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " || $0 == "\t" }
                guard let equals = trimmed.firstIndex(of: "=") else { continue }
                if trimmed[..<equals] == name { return trimmed[trimmed.index(after: equals)...] }
            }
        }
        return nil
    }
}

extension Duration {
    /// Whole and fractional seconds, for dates.
    var timeInterval: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}
