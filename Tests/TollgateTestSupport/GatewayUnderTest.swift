import Foundation
import TollgateCore
import TollgatePostgres

/// A `tollgate serve` process with a configuration written for one test: its servers and their policies, agents
/// with fresh keys, a fresh database on the test cluster, and a free loopback port.
///
/// ```swift
/// let gateway = try await GatewayUnderTest.start(servers: ["time": .stdio(command: try Peers.serverTime(), policy: "default: allow")])
/// defer { gateway.stop() }
/// let url = gateway.url("time")   // http://127.0.0.1:PORT/mcp/time
/// ```
public final class GatewayUnderTest: @unchecked Sendable {
    /// One upstream server for the configuration.
    public enum Server {
        case stdio(command: String, arguments: [String] = [], policy: String, extra: String = "")
        case http(url: String, transport: String = "streamable-http", policy: String, extra: String = "")
    }

    public let port: Int
    public let directory: URL
    public let database: PostgresConfiguration
    /// Agent id → key.
    public let keys: [String: String]
    /// Reviewer id → token (for `/v1`).
    public private(set) var tokens: [String: String] = [:]
    public private(set) var process: RunningProgram

    public var key: String { keys["agent-a"]! }

    private init(port: Int, directory: URL, database: PostgresConfiguration, keys: [String: String], process: RunningProgram) {
        self.port = port
        self.directory = directory
        self.database = database
        self.keys = keys
        self.process = process
    }

    public func url(_ server: String) -> String { "http://127.0.0.1:\(port)/mcp/\(server)" }

    public var configPath: String { directory.appendingPathComponent("tollgate.yaml").path }

    /// Writes the configuration and starts the gateway; returns once `/readyz` answers 200.
    ///
    /// - Parameters:
    ///   - servers: name → server; each policy is YAML text written to `policies/<name>.yaml`.
    ///   - agents: agent id → grant; each gets a fresh key.
    ///   - extraConfig: YAML appended at the top level (limits, allowed_origins, ...).
    public static func start(
        servers: [String: Server], agents: [String: String] = ["agent-a": "grant-a", "agent-b": "grant-b"],
        reviewers: [String: String] = [:], extraConfig: String = "",
        database databaseConfiguration: PostgresConfiguration? = nil, environment: [String: String] = [:]
    ) async throws -> GatewayUnderTest {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-gw-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("policies"), withIntermediateDirectories: true)
        var yaml = "servers:\n"
        for (name, server) in servers.sorted(by: { $0.key < $1.key }) {
            yaml += "  \(name):\n"
            switch server {
            case .stdio(let command, let arguments, let policy, let extra):
                yaml += "    command: \(yamlString(command))\n"
                yaml += "    args: [\(arguments.map(yamlString).joined(separator: ", "))]\n"
                yaml += "    policy: policies/\(name).yaml\n" + extra
                try policy.write(to: directory.appendingPathComponent("policies/\(name).yaml"), atomically: true, encoding: .utf8)
            case .http(let url, let transport, let policy, let extra):
                yaml += "    url: \(yamlString(url))\n    transport: \(transport)\n"
                yaml += "    policy: policies/\(name).yaml\n" + extra
                try policy.write(to: directory.appendingPathComponent("policies/\(name).yaml"), atomically: true, encoding: .utf8)
            }
        }
        var keys: [String: String] = [:]
        yaml += "agents:\n"
        for (agent, grant) in agents.sorted(by: { $0.key < $1.key }) {
            let key = AgentKey.generate()
            keys[agent] = key
            yaml += "  - {id: \(agent), grant: \(grant), key_hash: \"\(AgentKey.hash(key))\"}\n"
        }
        var tokens: [String: String] = [:]
        if !reviewers.isEmpty {
            yaml += "reviewers:\n"
            for (reviewer, role) in reviewers.sorted(by: { $0.key < $1.key }) {
                let token = AgentKey.generate()
                tokens[reviewer] = token
                yaml += "  - {id: \(reviewer), role: \(role), token_hash: \"\(AgentKey.hash(token))\"}\n"
            }
        }
        yaml += extraConfig
        try yaml.write(to: directory.appendingPathComponent("tollgate.yaml"), atomically: true, encoding: .utf8)
        let database: PostgresConfiguration
        if let given = databaseConfiguration { database = given } else { database = try await TestCluster.freshDatabase() }
        let port = HTTPProbe.freePort()
        let process = try RunningProgram(
            RunningProgram.tollgateBinary,
            [
                "serve", "--config", directory.appendingPathComponent("tollgate.yaml").path, "--listen", "127.0.0.1:\(port)", "--database",
                database.connectionString,
            ],
            environment: environment)
        let gateway = GatewayUnderTest(port: port, directory: directory, database: database, keys: keys, process: process)
        gateway.tokens = tokens
        guard await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(60))?.status == 200 else {
            process.kill()
            throw RunningProgram.Failure(description: "the gateway did not become ready:\n\(process.standardError.suffix(4000))")
        }
        return gateway
    }

    /// Starts another gateway process on the same configuration and database (for two-process tests).
    public func startTwin() async throws -> (port: Int, process: RunningProgram) {
        let port = HTTPProbe.freePort()
        let twin = try RunningProgram(
            RunningProgram.tollgateBinary,
            ["serve", "--config", configPath, "--listen", "127.0.0.1:\(port)", "--database", database.connectionString])
        guard await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(60))?.status == 200 else {
            twin.kill()
            throw RunningProgram.Failure(description: "the second gateway did not become ready:\n\(twin.standardError.suffix(4000))")
        }
        return (port, twin)
    }

    /// Kills the gateway with SIGKILL (no shutdown of any kind) and starts it again on the same port, configuration
    /// and database.
    public func killAndRestart() async throws {
        process.signal(SIGKILL)
        _ = try? process.wait(timeout: .seconds(20))
        process = try RunningProgram(
            RunningProgram.tollgateBinary,
            ["serve", "--config", configPath, "--listen", "127.0.0.1:\(port)", "--database", database.connectionString])
        guard await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(60))?.status == 200 else {
            process.kill()
            throw RunningProgram.Failure(description: "the restarted gateway did not become ready:\n\(process.standardError.suffix(4000))")
        }
    }

    /// One request to the approvals API as `reviewer` (nil: no token); the status and the body as JSON (nil if not JSON).
    public func api(
        _ method: String, _ path: String, as reviewer: String?, body: String? = nil, contentType: String = "application/json"
    ) -> (status: Int, body: JSONValue?, text: String) {
        var headers: [(String, String)] = []
        if let reviewer { headers.append(("Authorization", "Bearer \(tokens[reviewer] ?? reviewer)")) }
        if body != nil { headers.append(("Content-Type", contentType)) }
        guard let response = HTTPProbe.request(port: port, method: method, path: path, headers: headers, body: Array((body ?? "").utf8)) else {
            return (0, nil, "no answer")
        }
        return (response.status, try? JSONValue(parsing: response.body), response.body)
    }

    /// Polls the approvals API until `count` requests have `status`; returns them, newest first (empty on time-out).
    public func awaitApprovals(
        status: String = "pending", count: Int = 1, as reviewer: String, timeout: Duration = .seconds(20)
    ) async
        -> [JSONValue]
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let items = api("GET", "/v1/approvals?status=\(status)&limit=500", as: reviewer).body?["items"]?.arrayValue ?? []
            if items.count >= count { return items }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return []
    }

    /// Rewrites a server's policy file (the gateway reloads it within a few seconds).
    public func writePolicy(_ server: String, _ text: String) throws {
        try text.write(to: directory.appendingPathComponent("policies/\(server).yaml"), atomically: true, encoding: .utf8)
    }

    public var log: String { process.standardError }

    public func stop() {
        process.signal(SIGTERM)
        _ = try? process.wait(timeout: .seconds(20))
        process.kill()
    }

    /// The events of `type` once there are at least `count` of them, or whatever there is after `timeout`. An outcome
    /// is appended just after its call's answer, so a test that has its answers may read the log a moment too soon.
    public func events(type: String, atLeast count: Int, timeout: Duration = .seconds(10)) async throws -> [RecordedEvent] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = try await events(type: type)
            if found.count >= count || ContinuousClock.now >= deadline { return found }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The events of the test's database, oldest first.
    public func events(type: String? = nil) async throws -> [RecordedEvent] {
        let client = PostgresClient(configuration: database)
        defer { Task { await client.shutdown() } }
        let store = EventStore(client: client)
        defer { store.stop() }
        var all: [RecordedEvent] = []
        var position = LogPosition.start
        while true {
            let page = try await store.readAll(after: position, limit: 1000)
            guard let last = page.last else { break }
            all += page
            position = last.logPosition
        }
        return type.map { type in all.filter { $0.type == type } } ?? all
    }
}

/// A string as a JSON (and so YAML) literal.
func yamlString(_ text: String) -> String {
    JSONValue.string(text).canonicalJSON
}
