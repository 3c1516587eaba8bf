import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TollgateCore
import TollgatePostgres

/// The reviewer web page at `/ui`, served by `tollgate serve`: sign-in with a reviewer token into a session kept in
/// PostgreSQL, the pending approvals (refreshed every 2 s by `/ui/static/app.js`), one request with its history and the
/// approve and deny forms, history and overview. HTML is rendered here from Swift; the page's only script and
/// stylesheet are embedded in the binary (``ReviewerPageAssets``). Decisions go through ``ApprovalDecisions``, the
/// same path and rules as `/v1`.
///
/// Every response under `/ui` carries the security headers (``securityHeaders``), errors and redirects included;
/// every form is checked for its CSRF token and its origin (docs/reviewers.md, "Security model").
///
/// ```swift
/// ReviewerPage(gateway: gateway, logger: logger).register(on: router)
/// ```
struct ReviewerPage: Sendable {
    let gateway: Gateway
    let book: ApprovalBook
    let decisions: ApprovalDecisions
    let sessions: ReviewerSessionStore
    /// The reviewers as the configuration lists them now (reloaded with the configuration file).
    var reviewers: [ReviewerConfig] { gateway.live.snapshot.reviewerList }
    var directory: ReviewerDirectory { gateway.live.snapshot.reviewers }
    let settings: ReviewerPageSettings
    /// `scheme://host[:port]` of `public_url`, when there is one: an `Origin` the forms accept besides the request's host.
    let publicOrigin: String?
    /// Whether cookies get `Secure`: the page is reached over https (`public_url` is https).
    let secureCookies: Bool
    let logger: Logger
    /// Refusals before sign-in, logged at most once a second.
    let refusals: ReviewerPageRefusalLog

    init(gateway: Gateway, logger: Logger) {
        self.gateway = gateway
        book = gateway.approvals.book
        decisions = ApprovalDecisions(book: gateway.approvals.book, logger: logger)
        sessions = ReviewerSessionStore(client: gateway.approvals.book.store.client)
        settings = gateway.config.ui
        publicOrigin = gateway.config.publicURL.flatMap(Self.origin(of:))
        secureCookies = gateway.config.publicURL?.lowercased().hasPrefix("https://") ?? false
        self.logger = logger
        refusals = ReviewerPageRefusalLog(logger: logger)
    }

    /// The event log, for a request's history and the overview.
    var store: EventStore { book.store }

    func register<Context: RequestContext>(on router: Router<Context>) {
        let ui = router.group("ui").add(middleware: ReviewerPageHeaders(logger: logger))
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete]
        /// Serves `handlers` on `path` (HEAD as GET without the body), and answers every other method 405 in words.
        func route(_ path: RouterPath, _ handlers: [HTTPRequest.Method: @Sendable (Request, Context) async -> Response]) {
            for method in methods {
                if method == .head, let get = handlers[.get] {
                    ui.on(path, method: .head) { request, context in
                        let response = await get(request, context)
                        return Response(status: response.status, headers: response.headers, body: ResponseBody())
                    }
                } else if let handler = handlers[method] {
                    ui.on(path, method: method) { request, context in await handler(request, context) }
                } else {
                    let allowed = handlers.keys.map(\.rawValue).sorted().joined(separator: ", ")
                    ui.on(path, method: method) { _, _ in
                        var response = Self.html(
                            .methodNotAllowed,
                            ReviewerPageLayout.errorPage(title: "Not allowed", message: "This address only answers \(allowed).", session: nil))
                        response.headers[.allow] = allowed
                        return response
                    }
                }
            }
        }
        route("", [.get: { request, _ in await home(request) }])
        route("sign-in", [.get: { request, _ in await signInPage(request) }, .post: { request, _ in await signIn(request) }])
        route("sign-out", [.post: { request, _ in await signOut(request) }])
        route("pending", [.get: { request, _ in await withSession(request) { try await pendingPage(request, session: $0) } }])
        route("pending/rows", [.get: { request, _ in await withSession(request) { try await pendingRows(request, session: $0) } }])
        route(
            "approvals/:id",
            [
                .get: { request, context in
                    await withSession(request) { try await approvalPage(request, id: context.parameters.get("id") ?? "", session: $0) }
                }
            ])
        for verdict in ["approve", "deny"] {
            route(
                RouterPath("approvals/:id/\(verdict)"),
                [
                    .post: { request, context in
                        await withSession(request, form: true) {
                            try await decide(request, id: context.parameters.get("id") ?? "", approve: verdict == "approve", session: $0)
                        }
                    }
                ])
        }
        // History and Overview (docs/reviewers.md): ReviewerPage+History.swift, ReviewerPage+Overview.swift.
        route("history", [.get: { request, _ in await withSession(request) { try await historyPage(request, session: $0) } }])
        route("overview", [.get: { request, _ in await withSession(request) { try await overviewPage(request, session: $0) } }])
        for asset in ReviewerPageAssets.all {
            route(RouterPath("static/\(asset.name)"), [.get: { _, _ in Self.asset(asset) }])
        }
        for method in methods {
            ui.on("**", method: method) { _, _ in
                Self.html(
                    .notFound,
                    ReviewerPageLayout.errorPage(
                        title: "Not found", message: "There is no page at this address. The pending approvals are at /ui/pending.", session: nil))
            }
        }
    }

    // MARK: - Responses

    /// An HTML page.
    static func html(_ status: HTTPResponse.Status, _ html: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// A 303 to a path of this site.
    static func redirect(_ location: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.location] = location
        fields[.contentType] = "text/html; charset=utf-8"
        let body = "<!DOCTYPE html><title>See other</title><p><a href=\"\(HTML.escape(location))\">Continue</a></p>\n"
        return Response(status: .seeOther, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    /// A problem as a page: the signed-in layout when there is a session.
    static func problemPage(_ problem: ReviewerPageProblem, session: ReviewerSession?) -> Response {
        let title: String
        switch problem.status.code {
        case 403: title = "Refused"
        case 404: title = "Not found"
        case 413: title = "Form too large"
        case 503: title = "Unavailable"
        default: title = "Cannot do that"
        }
        return html(problem.status, ReviewerPageLayout.errorPage(title: title, message: problem.text, session: session))
    }

    static func asset(_ asset: ReviewerPageAssets.Asset) -> Response {
        Response(
            status: .ok, headers: [.contentType: asset.contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: asset.text)))
    }

    private func home(_ request: Request) async -> Response {
        do {
            if try await session(for: request) != nil { return Self.redirect("/ui/pending") }
        } catch {
            return Self.unavailable(error, logger: logger)
        }
        return Self.redirect("/ui/sign-in")
    }

    /// The database failed under a page: 503 in words.
    static func unavailable(_ error: any Error, session: ReviewerSession? = nil, logger: Logger) -> Response {
        logger.error("reviewer page: the database failed", metadata: ["error": "\(error)"])
        return problemPage(
            ReviewerPageProblem(.serviceUnavailable, "The approvals cannot be read or written now (the database is unavailable). Try again."),
            session: session)
    }

    /// `scheme://host[:port]` of an http(s) URL, lowercased, without a default port.
    static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host?.lowercased(),
            scheme == "http" || scheme == "https"
        else { return nil }
        let hostPart = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        if let port = components.port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) {
            return "\(scheme)://\(hostPart):\(port)"
        }
        return "\(scheme)://\(hostPart)"
    }
}
