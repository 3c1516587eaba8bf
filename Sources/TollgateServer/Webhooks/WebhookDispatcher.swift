import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import TollgateCore
import TollgatePostgres

/// Sends the outbox's deliveries: one worker per endpoint, so a slow or dead endpoint never delays another (or the
/// gateway). A worker claims its oldest due delivery with a lease, sends it signed (Standard Webhooks: `webhook-id`,
/// `webhook-timestamp`, `webhook-signature`), records the attempt (status code, latency, error) and either marks the
/// delivery delivered (2xx) or schedules the next attempt: exponential backoff from the endpoint's `backoff` (doubling,
/// at most an hour, ±20% jitter), `Retry-After` on 429, until `retry_for` has passed; 410 stops at once. Redirects are
/// not followed, and every attempt is bounded by the endpoint's `timeout`. At least once: the same `webhook-id` on
/// every attempt, so receivers drop duplicates.
///
/// The endpoints are those in force (`endpoints` is asked every `pollInterval`: the configuration reloads them): an
/// endpoint added gets its worker, one removed or changed has its worker stop after the attempt under way (a changed one
/// gets a new worker). A removed endpoint's queued deliveries stay in the outbox, sent if it comes back.
final class WebhookDispatcher: Service, Sendable {
    let endpoints: @Sendable () -> [WebhookConfig]
    let store: EventStore
    let http: HTTPClient
    let logger: Logger
    let pollInterval: Duration

    init(
        endpoints: @escaping @Sendable () -> [WebhookConfig], store: EventStore, http: HTTPClient, pollInterval: Duration = .milliseconds(250),
        logger: Logger
    ) {
        self.endpoints = endpoints
        self.store = store
        self.http = http
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// A client for webhooks: no redirects, bounded connection time.
    static func makeClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(5))
        configuration.connectionPool = .init(idleTimeout: .seconds(30))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdownClient() async {
        try? await http.shutdown()
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                // Each endpoint's worker, by name, as it was started.
                var working: [String: WebhookConfig] = [:]
                while !Task.isCancelled {
                    let current = self.endpoints()
                    for endpoint in current where working[endpoint.name] != endpoint {
                        working[endpoint.name] = endpoint
                        group.addTask { await self.work(endpoint) }
                    }
                    let names = Set(current.map(\.name))
                    working = working.filter { names.contains($0.key) }
                    try? await Task.sleep(for: self.pollInterval)
                }
            }
        }
    }

    /// Whether `endpoint` is in force as it is (not removed or changed since its worker started).
    private func inForce(_ endpoint: WebhookConfig) -> Bool {
        endpoints().contains(endpoint)
    }

    private func work(_ endpoint: WebhookConfig) async {
        let signal = store.changes
        while !Task.isCancelled, inForce(endpoint) {
            let seen = signal.generation
            do {
                if let delivery = try await claim(endpoint) {
                    await attempt(delivery, endpoint: endpoint)
                    continue
                }
            } catch {
                logger.warning("webhooks: cannot read the outbox; retrying", metadata: ["endpoint": "\(endpoint.name)", "error": "\(error)"])
            }
            await signal.wait(after: seen, timeout: pollInterval)
        }
    }

    typealias Delivery = WebhookOutboxStore.Delivery

    /// The endpoint's oldest due delivery, leased to this worker for the length of one attempt.
    private func claim(_ endpoint: WebhookConfig) async throws -> Delivery? {
        try await WebhookOutboxStore(client: store.client).claim(endpoint: endpoint.name, leaseSeconds: endpoint.timeout + 30)
    }

    private func attempt(_ delivery: Delivery, endpoint: WebhookConfig) async {
        let started = Date()
        let clock = ContinuousClock.now
        var status: Int?
        var error: String?
        var retryAfter: Int?
        do {
            var request = HTTPClientRequest(url: endpoint.url)
            request.method = .POST
            let body = Array(delivery.body.utf8)
            let headers = StandardWebhooks.headers(
                id: delivery.id, timestamp: StandardWebhooks.currentTimestamp(), body: body, secrets: endpoint.secrets)
            for (name, value) in headers.fields { request.headers.add(name: name, value: value) }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "tollgate-webhooks/1")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await http.execute(request, timeout: .seconds(Int64(endpoint.timeout)))
            status = Int(response.status.code)
            retryAfter = response.headers.first(name: "Retry-After").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            // Read (and drop) at most 64 KiB of the answer, within the same time limit.
            _ = try? await response.body.collect(upTo: 64 * 1024)
        } catch let failure {
            error = String(describing: failure).prefix(500).description
        }
        let latency = Double(clock.duration(to: .now).components.attoseconds) / 1e15 + Double(clock.duration(to: .now).components.seconds) * 1000
        let delivered = status.map { (200..<300).contains($0) } ?? false
        let gone = status == 410
        let next = Self.nextAttempt(after: delivery.attempt, backoff: endpoint.backoff, retryAfter: status == 429 ? retryAfter : nil, now: Date())
        let outcome = delivered ? "delivered" : (gone || next >= delivery.giveUpAt) ? "failed" : "pending"
        let lastError = error ?? (delivered ? nil : status.map { "HTTP \($0)" + ($0 == 410 ? " (Gone: the endpoint asks not to be sent more)" : "") })
        do {
            try await WebhookOutboxStore(client: store.client).record(
                attempt: delivery.attempt, of: delivery.id, startedAt: started, statusCode: status, latencyMillis: latency, error: error,
                outcome: outcome, nextAttemptAt: next, lastError: lastError)
        } catch {
            logger.warning("webhooks: cannot record an attempt", metadata: ["delivery": "\(delivery.id)", "error": "\(error)"])
        }
        if outcome == "failed" {
            logger.error(
                "webhook delivery failed for good",
                metadata: [
                    "endpoint": "\(endpoint.name)", "delivery": "\(delivery.id)", "attempts": "\(delivery.attempt)", "error": "\(lastError ?? "")",
                ])
        } else if !delivered {
            logger.notice(
                "webhook delivery attempt failed; will retry",
                metadata: [
                    "endpoint": "\(endpoint.name)", "delivery": "\(delivery.id)", "attempt": "\(delivery.attempt)", "error": "\(lastError ?? "")",
                ])
        }
    }

    /// When to try again after `attempt` attempts: `backoff` doubling per attempt, at most an hour, ±20% jitter; or
    /// what a 429's `Retry-After` asks (at most a day).
    static func nextAttempt(after attempt: Int, backoff: Int, retryAfter: Int?, now: Date) -> Date {
        if let retryAfter, retryAfter >= 0 { return now.addingTimeInterval(TimeInterval(min(retryAfter, 86400))) }
        let base = min(3600, Double(backoff) * pow(2, Double(max(0, attempt - 1))))
        return now.addingTimeInterval(base * Double.random(in: 0.8...1.2))
    }
}
