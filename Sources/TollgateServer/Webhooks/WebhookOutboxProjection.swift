import Foundation
import TollgateCore
import TollgatePostgres

/// Projection `webhooks`: the outbox. For each approval event an endpoint subscribes to (its kind, server and tool), one
/// row in `tollgate.webhook_deliveries` with the exact body to send; `WebhookDispatcher` sends them.
///
/// Idempotent: a delivery's id comes from the endpoint and the event's position, and rows that exist are kept, so a
/// rebuild (or two gateways' projectors) never queue an event twice, and a delivery already made is not made again.
/// Events older than an endpoint's `retry_for` are not queued (a new endpoint is not sent the whole history).
struct WebhookOutboxProjection: Projection {
    let name = "webhooks"
    /// The endpoints in force when a batch of events is applied (the configuration's, reloaded when it changes): an
    /// endpoint added is queued the events that come after, one removed no more.
    let currentEndpoints: @Sendable () -> [WebhookConfig]
    let baseURL: String
    /// Whether `slack` messages about a request carry Approve and Deny buttons (the gateway has a `slack` app).
    var interactive = false

    init(endpoints: @escaping @Sendable () -> [WebhookConfig], baseURL: String, interactive: Bool = false) {
        currentEndpoints = endpoints
        self.baseURL = baseURL
        self.interactive = interactive
    }

    var eventTypes: Set<String>? { ApprovalEvent.types }

    /// Deliveries are what was sent; a rebuild keeps them.
    func reset(on connection: PostgresConnection) throws {}

    func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws {
        let endpoints = currentEndpoints()
        guard !endpoints.isEmpty else { return }
        let now = Date()
        for event in events {
            guard let decoded = try ApprovalEvent.decode(type: event.type, data: event.data) else { continue }
            let approval: Approval
            if case .requested(let requested) = decoded {
                approval = Approval(requested)
            } else {
                // The request as it stood right after this event.
                var folded: [ApprovalEvent] = []
                for row in try EventStore.events(ofStream: event.streamID, throughVersion: event.version, on: connection) {
                    if let item = try ApprovalEvent.decode(type: row.type, data: row.data) { folded.append(item) }
                }
                guard let state = Approval.fold(folded) else { continue }
                approval = state
            }
            guard let kind = WebhookMessage.kind(of: decoded, approval: approval) else { continue }
            for endpoint in endpoints where endpoint.events.contains(kind) {
                guard endpoint.covers(server: approval.request.server, tool: approval.request.tool) else { continue }
                guard event.recordedAt.addingTimeInterval(TimeInterval(endpoint.retryFor)) > now else { continue }
                if kind == .requested {
                    try queueRequest(approval, event: event, endpoint: endpoint, on: connection)
                    continue
                }
                let body = WebhookMessage.body(
                    kind, approval: approval, at: event.recordedAt, format: endpoint.format, baseURL: baseURL, interactive: interactive)
                try WebhookOutboxStore.enqueue(
                    id: WebhookMessage.id(endpoint: endpoint.name, position: event.position), endpoint: endpoint.name, eventType: kind.rawValue,
                    eventPosition: event.position, approvalID: approval.id, body: body,
                    giveUpAt: event.recordedAt.addingTimeInterval(TimeInterval(endpoint.retryFor)), on: connection)
            }
        }
    }

    /// Queues an approval request for `endpoint`, coalesced per agent: the agent's first request is queued at once and
    /// opens a window of `coalesce` seconds; the requests that follow within it go into one burst delivery ("agent X:
    /// N more requests pending"), due when the window ends. A burst takes requests until its first attempt; one that
    /// comes later, still within the window, starts another burst, due at once. The windows go by the events' times,
    /// so a rebuild (which queues nothing already told) coalesces the same way.
    private func queueRequest(_ approval: Approval, event: RecordedEvent, endpoint: WebhookConfig, on connection: PostgresConnection) throws {
        let agent = approval.request.agent
        let time = event.recordedAt
        let id = WebhookMessage.id(endpoint: endpoint.name, position: event.position)
        let retryFor = TimeInterval(endpoint.retryFor)
        guard
            try !WebhookOutboxStore.tells(endpoint: endpoint.name, agent: agent, id: id, approvalID: approval.id, at: time, on: connection)
        else { return }
        if endpoint.coalesce > 0, let latest = try WebhookOutboxStore.latestRequest(endpoint: endpoint.name, agent: agent, at: time, on: connection) {
            if let coalesced = latest.coalesced, latest.open {
                let ids = coalesced + [approval.id]
                let body = try burstBody(ids, agent: agent, at: time, endpoint: endpoint, on: connection)
                try WebhookOutboxStore.coalesce(into: latest.id, approvalIDs: ids, body: body, on: connection)
            } else {
                let body = try burstBody([approval.id], agent: agent, at: time, endpoint: endpoint, on: connection)
                try WebhookOutboxStore.enqueueRequest(
                    id: id, endpoint: endpoint.name, eventType: WebhookMessage.burstType, eventPosition: event.position, approvalID: approval.id,
                    agent: agent, body: body, dueAt: latest.windowEndsAt, windowEndsAt: latest.windowEndsAt, coalesced: [approval.id],
                    giveUpAt: latest.windowEndsAt.addingTimeInterval(retryFor), on: connection)
            }
            return
        }
        let body = WebhookMessage.body(.requested, approval: approval, at: time, format: endpoint.format, baseURL: baseURL, interactive: interactive)
        try WebhookOutboxStore.enqueueRequest(
            id: id, endpoint: endpoint.name, eventType: WebhookConfig.Event.requested.rawValue, eventPosition: event.position,
            approvalID: approval.id, agent: agent, body: body, dueAt: nil, windowEndsAt: time.addingTimeInterval(TimeInterval(endpoint.coalesce)),
            coalesced: nil, giveUpAt: time.addingTimeInterval(retryFor), on: connection)
    }

    /// A burst's message, from the requests' rows (each folded in the transaction of its event, so all are there).
    private func burstBody(_ ids: [UUID], agent: String, at time: Date, endpoint: WebhookConfig, on connection: PostgresConnection) throws -> String {
        let shown = Array(ids.prefix(WebhookMessage.burstListed))
        let approvals = try ApprovalBook.states(shown, on: connection, forUpdate: false)
        return WebhookMessage.burst(
            agent: agent, count: ids.count, approvals: shown.compactMap { approvals[$0] }, at: time, format: endpoint.format, baseURL: baseURL)
    }
}
