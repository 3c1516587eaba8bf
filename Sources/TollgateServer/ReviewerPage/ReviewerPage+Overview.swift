import Hummingbird
import TollgatePostgres

/// Overview: decisions per minute for the last hour, the busiest tools, the open sessions and the projector's lag
/// (`/ui/overview`, ``Overview``).
extension ReviewerPage {
    func overviewPage(_ request: Request, session: ReviewerSession) async throws -> Response {
        var open: [String: Int] = [:]
        for server in gateway.config.servers { open[server.name] = await gateway.registry.sessions(server: server.name).count }
        let overview = try await Overview.load(
            store: OverviewStore(client: store.client), sessions: .init(byServer: open), projections: GatewayServer.projections().map(\.name))
        return Self.html(.ok, ReviewerPageLayout.page(title: "Overview", session: session, current: .overview, body: overview.html()))
    }
}
