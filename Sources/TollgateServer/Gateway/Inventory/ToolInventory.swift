import AsyncHTTPClient
import Foundation
import Logging
import TollgateCore
import TollgateMCP

/// Everything an upstream server offers, with what the policy in force does with each tool: the inventory behind
/// `tollgate tools` and `tollgate policy scaffold`.
public struct ToolInventory: Sendable {
    public struct Entry: Sendable {
        public var tool: ToolDescriptor
        public var risk: RiskAssessment
        /// `allow`, `deny`, `limited`, `require_approval` or `hidden`, for a call with no arguments; `nil` without a policy.
        public var decision: String?
        public var rule: String?
    }

    public var server: String
    public var serverName: String?
    public var serverVersion: String?
    public var policyHash: String?
    public var entries: [Entry]

    /// Connects to `server` as its configuration says, lists its tools, and evaluates the policy file (when it loads).
    public static func load(config: GatewayConfig, server name: String, logger: Logger) async throws -> ToolInventory {
        guard let server = config.server(named: name) else {
            let known = config.servers.map(\.name).joined(separator: ", ")
            throw InventoryError("no server named `\(name)` in the configuration (servers: \(known.isEmpty ? "none" : known))")
        }
        let http = UpstreamHTTPClients()
        let factory = UpstreamFactory(clients: http, maxMessageBytes: 16 << 20, logger: logger)
        let inventory: ToolInventoryClient.Inventory
        do {
            let connection = try await factory.connector(for: server)()
            do {
                inventory = try await ToolInventoryClient(connection: connection).inventory()
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
        } catch {
            await http.shutdown()
            throw InventoryError("cannot list the tools of `\(name)`: \(error)")
        }
        await http.shutdown()
        let policy = try? PolicyLoader.load(Data(contentsOf: URL(fileURLWithPath: server.policyPath)), fileName: server.policyPath)
        let classifier = RiskClassifier()
        let entries = inventory.tools.map { tool -> Entry in
            let risk = classifier.classify(tool)
            guard let policy else { return Entry(tool: tool, risk: risk, decision: nil, rule: nil) }
            let decided = decision(of: policy, server: name, tool: tool.name, category: risk.category)
            return Entry(tool: tool, risk: risk, decision: decided.decision, rule: decided.rule)
        }
        return ToolInventory(
            server: name, serverName: inventory.serverName, serverVersion: inventory.serverVersion, policyHash: policy?.contentHash, entries: entries)
    }

    /// What `policy` gives a call of `tool` of `server` (rated `category`) with no arguments: `allow`, `deny`, `limited`,
    /// `require_approval` or `hidden`, and the rule that decided.
    public static func decision(of policy: CompiledPolicy, server: String, tool: String, category: RiskCategory) -> (decision: String, rule: String) {
        let call = PolicyCall(
            agent: "inventory", grant: "inventory", session: "inventory", server: server, tool: tool, arguments: .object([:]), category: category,
            now: Date())
        let decision = policy.evaluate(call)
        return (decision.outcome.name, decision.rule)
    }

    /// A starting policy for these tools: reads allowed, destructive and financial tools held for approval, anything
    /// else allowed within a rate limit, and every tool the upstream adds later denied until someone decides.
    public func scaffold() -> String {
        var lines = [
            "# Starting policy for `\(server)`\(serverName.map { " (\($0)\(serverVersion.map { " \($0)" } ?? ""))" } ?? ""), written by `tollgate policy scaffold`.",
            "# Review every entry: the categories come from the tools' names, descriptions and annotations.",
            "version: \"1\"",
            "default: deny",
            "tools:",
        ]
        if entries.isEmpty { lines[lines.count - 1] = "tools: {}" }
        for entry in entries.sorted(by: { $0.tool.name < $1.tool.name }) {
            lines.append("  # \(entry.risk.category.rawValue), \(entry.risk.level.rawValue) risk: \(entry.risk.reasons.first ?? "")")
            lines.append("  \(JSONRPCWriter.string(entry.tool.name)):")
            switch entry.risk.category {
            case .read:
                lines.append("    action: allow")
            case .destructive, .financial:
                lines.append("    action: require_approval")
                lines.append("    approval: {timeout: 1h, hold: 50s}")
            case .write, .execute, .other:
                lines.append("    limits:")
                lines.append("      - {counter: \(Self.counterName(entry.tool.name)), window: minute, max: 30, scope: agent}")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func counterName(_ tool: String) -> String {
        let cleaned = tool.lowercased().unicodeScalars.map { ("a"..."z").contains($0) || ("0"..."9").contains($0) ? Character($0) : "_" }
        return String(cleaned.prefix(50)) + "_rate"
    }
}

/// Why the inventory could not be taken.
public struct InventoryError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
