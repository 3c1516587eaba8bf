import HTTPTypes
import Hummingbird
import Logging

/// Puts the reviewer page's security headers on every response under `/ui` (pages, fragments, assets, redirects and
/// errors), and turns anything a handler throws into an error page that has them too.
struct ReviewerPageHeaders<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    /// The page runs only its own script and stylesheet, loads nothing from elsewhere, posts forms only to itself,
    /// and may not be framed.
    static var contentSecurityPolicy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; "
            + "frame-ancestors 'none'; base-uri 'none'"
    }

    static var fields: [(HTTPField.Name, String)] {
        [
            (HTTPField.Name("Content-Security-Policy")!, contentSecurityPolicy),
            (HTTPField.Name("X-Frame-Options")!, "DENY"),
            (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
            (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
            (.cacheControl, "no-store"),
        ]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            logger.debug("reviewer page: an HTTP error", metadata: ["error": "\(error)"])
            let status = error.status
            response = ReviewerPage.problemPage(
                ReviewerPageProblem(status, status.code == 413 ? ReviewerPageForm.tooLarge.message : "The request was refused (\(status.code))."),
                session: nil)
        } catch {
            response = ReviewerPage.unavailable(error, logger: logger)
        }
        for (name, value) in Self.fields { response.headers[name] = value }
        return response
    }
}

extension ReviewerPage {
    /// Why a form must not be acted on because of where it came from, or `nil`: a browser says `Sec-Fetch-Site` other
    /// than `same-origin` (or `none`), or an `Origin` that is not this gateway's (its `public_url`, or the scheme and
    /// `Host` of the request). `Origin: null` passes only with `Sec-Fetch-Site: same-origin`: under the page's
    /// `Referrer-Policy: no-referrer` a browser sends `null` for its own forms.
    func crossSiteProblem(_ request: Request) -> ReviewerPageProblem? {
        let refused = ReviewerPageProblem(
            .forbidden,
            "This form came from another site, so it was not acted on. Use the form on this gateway's own page (cross-site request refused).",
            code: "cross_site")
        let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!]?.lowercased()
        if let site, site != "same-origin", site != "none" { return refused }
        guard let origin = request.headers[.origin] else { return nil }
        let presented = origin.lowercased()
        if presented == "null", site == "same-origin" { return nil }
        if let publicOrigin, presented == publicOrigin { return nil }
        if let host = request.head.authority?.lowercased(), !host.isEmpty {
            if presented == "http://\(host)" || presented == "https://\(host)" { return nil }
        }
        return refused
    }

    /// `next` when it is a path of the reviewer page to go back to after sign-in: `/ui/` and then only path and query
    /// characters, no `//`, no `\`, no `..`, at most 512 bytes. Anything else (another site, a scheme, an encoded
    /// slash trick) is `nil`, and the reviewer lands on the pending approvals.
    static func safeNext(_ next: String?) -> String? {
        guard let next, next.utf8.count <= 512, next.hasPrefix("/ui/"), !next.hasPrefix("/ui/sign-"), !next.contains("//"),
            !next.contains(".."), !next.contains("\\")
        else { return nil }
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/?=&%+".utf8)
        guard next.utf8.allSatisfy(allowed.contains) else { return nil }
        // A percent-escape must not hide a slash, a backslash or a dot.
        let lowered = next.lowercased()
        for hidden in ["%2f", "%5c", "%2e", "%00"] where lowered.contains(hidden) { return nil }
        return next
    }
}
