import Synchronization
import TollgateCore

/// The parts of the gateway's configuration that change while it runs: the agents, the reviewers and the webhooks
/// (docs/operating.md, "Reloading"). Request paths read the snapshot in force once per request; ``ConfigReloader``
/// swaps in a whole new one at once, so no request sees part of one configuration and part of another.
///
/// ```swift
/// let live = LiveConfig(config)
/// guard let agent = live.snapshot.agents.agent(forKey: key) else { return .unauthorized }
/// ```
final class LiveConfig: Sendable {
    /// One configuration's agents, reviewers and webhooks, with their lookups built once.
    final class Snapshot: Sendable {
        let agentList: [AgentConfig]
        let agents: AgentDirectory
        let reviewerList: [ReviewerConfig]
        let reviewers: ReviewerDirectory
        /// Reviewers by Slack member id.
        let reviewersBySlackID: [String: ReviewerConfig]
        let webhooks: [WebhookConfig]

        init(_ config: GatewayConfig) {
            agentList = config.agents
            agents = AgentDirectory(config.agents)
            reviewerList = config.reviewers
            reviewers = ReviewerDirectory(config.reviewers)
            var bySlack: [String: ReviewerConfig] = [:]
            for reviewer in config.reviewers {
                if let id = reviewer.slackUserID { bySlack[id] = reviewer }
            }
            reviewersBySlackID = bySlack
            webhooks = config.webhooks
        }
    }

    private let current: Mutex<Snapshot>

    init(_ config: GatewayConfig) {
        current = Mutex(Snapshot(config))
    }

    /// The agents, reviewers and webhooks in force now.
    var snapshot: Snapshot { current.withLock { $0 } }

    /// Puts `config`'s agents, reviewers and webhooks in force; returns the snapshot they replace.
    @discardableResult
    func replace(with config: GatewayConfig) -> Snapshot {
        let next = Snapshot(config)
        return current.withLock { current in
            defer { current = next }
            return current
        }
    }

    /// Whether `agent` (id, grant and key hash alike) is configured now.
    func admits(_ agent: AgentConfig) -> Bool {
        snapshot.agentList.contains(agent)
    }
}
