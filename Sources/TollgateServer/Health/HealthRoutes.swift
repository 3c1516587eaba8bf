import Foundation
import Hummingbird
import TollgatePostgres

/// `/healthz` (the process answers) and `/readyz` (the database answers, migrations are applied, the
/// projector runs): what a load balancer or an orchestrator polls.
struct HealthRoutes: Sendable {
    let client: PostgresClient
    let readiness: Readiness

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("healthz") { _, _ in
            Self.json(.ok, ["status": "ok"])
        }
        router.get("readyz") { _, _ in
            var problems: [String] = []
            do {
                try await HealthStore(client: client).ping()
            } catch {
                problems.append("database: \(error)")
            }
            problems += readiness.problems
            if problems.isEmpty { return Self.json(.ok, ["status": "ready"]) }
            return Self.json(.serviceUnavailable, ["status": "not ready", "problems": problems.joined(separator: "; ")])
        }
    }

    static func json(_ status: HTTPResponse.Status, _ fields: [String: String]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(fields)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
