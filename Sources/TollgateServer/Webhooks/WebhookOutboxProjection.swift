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
                let stream = try connection.query(
                    "SELECT type, data::text FROM tollgate.events WHERE stream_id = $1 AND version <= $2 ORDER BY version",
                    [event.streamID, event.version])
                var folded: [ApprovalEvent] = []
                for row in stream.rows {
                    if let item = try ApprovalEvent.decode(type: try row.decode(String.self, 0), data: try row.decode(JSONText.self, 1).bytes) {
                        folded.append(item)
                    }
                }
                guard let state = Approval.fold(folded) else { continue }
                approval = state
            }
            guard let kind = WebhookMessage.kind(of: decoded, approval: approval) else { continue }
            for endpoint in endpoints where endpoint.events.contains(kind) {
                guard endpoint.covers(server: approval.request.server, tool: approval.request.tool) else { continue }
                guard event.recordedAt.addingTimeInterval(TimeInterval(endpoint.retryFor)) > now else { continue }
                let body = WebhookMessage.body(kind, approval: approval, at: event.recordedAt, format: endpoint.format, baseURL: baseURL)
                try connection.query(
                    """
                    INSERT INTO tollgate.webhook_deliveries
                        (id, endpoint, event_type, event_position, approval_id, body, status, next_attempt_at, created_at, give_up_at)
                    VALUES ($1, $2, $3, $4, $5, $6, 'pending', now(), now(), $7)
                    ON CONFLICT DO NOTHING
                    """,
                    [
                        WebhookMessage.id(endpoint: endpoint.name, position: event.position), endpoint.name, kind.rawValue, event.position,
                        approval.id, body, event.recordedAt.addingTimeInterval(TimeInterval(endpoint.retryFor)),
                    ])
            }
        }
    }
}
