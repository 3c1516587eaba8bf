import Hummingbird

/// History: decided requests, newest first, with paging (`/ui/history?page=N`). A first placeholder for the page
/// docs/reviewers.md describes.
extension ReviewerPage {
    func historyPage(_ request: Request, session: ReviewerSession) async throws -> Response {
        let body = "<h1>History</h1>\n<p>Decided requests will be listed here.</p>"
        return Self.html(.ok, ReviewerPageLayout.page(title: "History", session: session, current: .history, body: body))
    }
}
