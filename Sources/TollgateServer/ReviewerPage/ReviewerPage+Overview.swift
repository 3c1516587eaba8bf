import Hummingbird

/// Overview: decisions per minute for the last hour, the busiest tools, the open sessions and the projector's lag
/// (`/ui/overview`). A first placeholder for the page docs/reviewers.md describes.
extension ReviewerPage {
    func overviewPage(_ request: Request, session: ReviewerSession) async throws -> Response {
        let body = "<h1>Overview</h1>\n<p>The gateway's decisions will be charted here.</p>"
        return Self.html(.ok, ReviewerPageLayout.page(title: "Overview", session: session, current: .overview, body: body))
    }
}
