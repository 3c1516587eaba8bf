/// Whether the database answers: what `/readyz` asks.
///
/// ```swift
/// try await HealthStore(client: client).ping()
/// ```
public struct HealthStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// A round trip to the server through the pool; throws when it cannot be made.
    public func ping() async throws {
        try await client.query("SELECT 1")
    }
}
