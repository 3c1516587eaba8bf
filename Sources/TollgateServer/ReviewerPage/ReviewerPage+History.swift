import Hummingbird
import TollgatePostgres

/// History: decided requests, newest first, a page at a time with keyset paging (`/ui/history`, ``History``).
extension ReviewerPage {
    func historyPage(_ request: Request, session: ReviewerSession) async throws -> Response {
        let query: History.Query
        do {
            query = try History.Query(parameters: request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        } catch {
            throw ReviewerPageProblem(.badRequest, error.description)
        }
        let page = try await History.load(query, store: ApprovalStore(client: store.client))
        return Self.html(.ok, ReviewerPageLayout.page(title: "History", session: session, current: .history, body: page.html()))
    }
}
