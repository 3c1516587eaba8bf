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
    let endpoints: [WebhookConfig]
    let baseURL: String

    var eventTypes: Set<String>? { ApprovalEvent.types }

    /// Deliveries are what was sent; a rebuild keeps them.
    func reset(on connection: PostgresConnection) throws {}

    func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws {
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
                let body = WebhookMessage.body(kind, approval: approval, at: event.recordedAt, format: endpoint.format, baseURL: baseURL)
                try WebhookOutboxStore.enqueue(
                    id: WebhookMessage.id(endpoint: endpoint.name, position: event.position), endpoint: endpoint.name, eventType: kind.rawValue,
                    eventPosition: event.position, approvalID: approval.id, body: body,
                    giveUpAt: event.recordedAt.addingTimeInterval(TimeInterval(endpoint.retryFor)), on: connection)
            }
        }
    }
}
