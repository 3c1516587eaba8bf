import Crypto
import Foundation
import TollgateCore

/// What an endpoint is sent about one approval event: the generic Standard Webhooks shape
/// (`{"type", "timestamp", "data"}`) or a Slack incoming-webhook message, with links to the approvals API.
enum WebhookMessage {
    /// The event kinds endpoints subscribe to, from an approval event and the request's state right after it.
    static func kind(of event: ApprovalEvent, approval: Approval) -> WebhookConfig.Event? {
        switch event {
        case .requested: .requested
        case .granted: approval.status == .approved ? .decided : nil
        case .denied: .decided
        case .expired: .expired
        case .consumed: nil
        }
    }

    /// The `webhook-id` of an endpoint's delivery of the event at `position`: the same whoever computes it, on every
    /// retry and after a rebuild.
    static func id(endpoint: String, position: Int64) -> String {
        "msg_" + Hex.lowercase(SHA256.hash(data: Array("\(endpoint)|\(position)".utf8)).prefix(12))
    }

    static func body(_ kind: WebhookConfig.Event, approval: Approval, at time: Date, format: WebhookConfig.Format, baseURL: String) -> String {
        let id = approval.id.lowercasedString
        let link = "\(baseURL)/v1/approvals/\(id)"
        switch format {
        case .generic:
            var data = ApprovalRepresentation.json(approval, now: time, withArguments: true)
            if case .object(var fields) = data {
                fields["links"] = ["approval": .string(link), "approve": .string(link + "/approve"), "deny": .string(link + "/deny")]
                data = .object(fields)
            }
            return JSONValue.object(["type": .string(kind.rawValue), "timestamp": .string(EventCoding.timestamp(time)), "data": data]).canonicalJSON
        case .slack:
            let request = approval.request
            let arguments = request.arguments.map { Self.summary($0) } ?? "(not stored: sha256 \(request.argumentsHash.prefix(12))…)"
            let headline: String
            switch kind {
            case .requested: headline = "Approval needed: \(request.agent) wants to call \(request.server)/\(request.tool)"
            case .decided:
                headline =
                    approval.status == .approved
                    ? "Approved by \(approval.grants.map(\.reviewer).joined(separator: ", ")): \(request.server)/\(request.tool) for \(request.agent)"
                    : "Denied by \(approval.denial?.reviewer ?? "a reviewer"): \(request.server)/\(request.tool) for \(request.agent)"
            case .expired: headline = "Expired, nobody decided: \(request.server)/\(request.tool) for \(request.agent)"
            }
            var details = "*\(Self.escape(headline))*\nArguments: `\(Self.escape(arguments))`\nRule: `\(Self.escape(request.rule))`"
            if let reason = request.reason { details += " (\(Self.escape(reason)))" }
            if let denial = approval.denial { details += "\nReason: \(Self.escape(denial.reason))" }
            details += "\nApprovals: \(approval.grants.count) of \(request.quorum); expires \(EventCoding.timestamp(request.expiresAt))"
            var blocks: [JSONValue] = [["type": "section", "text": ["type": "mrkdwn", "text": .string(details)]]]
            if kind == .requested {
                blocks.append([
                    "type": "context",
                    "elements": [
                        [
                            "type": "mrkdwn",
                            "text": .string(
                                "<\(link)|Open approval \(id.prefix(8))> · approve: <\(link)/approve|POST \(link)/approve> · "
                                    + "deny: <\(link)/deny|POST \(link)/deny> · or `tollgate approvals approve \(id)`"),
                        ]
                    ],
                ])
            }
            return JSONValue.object(["text": .string(headline.escapingInvisibles()), "blocks": .array(blocks)]).canonicalJSON
        }
    }

    /// The `type` of a burst's generic message, and its deliveries' event in `tollgate webhooks deliveries`.
    static let burstType = "approval.requested.burst"
    /// Requests a burst's message lists at most (its count is all of them).
    static let burstListed = 20

    /// One message for a burst of an agent's approval requests that followed its first within the endpoint's
    /// `coalesce` window: how many, the first ``burstListed`` with their links, and a link to all the agent's pending
    /// requests.
    static func burst(agent: String, count: Int, approvals: [Approval], at time: Date, format: WebhookConfig.Format, baseURL: String) -> String {
        let pending = "\(baseURL)/v1/approvals?status=pending&agent=\(agent.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? agent)"
        let headline = "Approval needed: agent \(agent): \(count) more \(count == 1 ? "request" : "requests") pending"
        switch format {
        case .generic:
            let listed: [JSONValue] = approvals.map { approval in
                let id = approval.id.lowercasedString
                let link = "\(baseURL)/v1/approvals/\(id)"
                return [
                    "id": .string(id), "server": .string(approval.request.server), "tool": .string(approval.request.tool),
                    "requested_at": .string(EventCoding.timestamp(approval.request.requestedAt)),
                    "expires_at": .string(EventCoding.timestamp(approval.request.expiresAt)),
                    "links": ["approval": .string(link), "approve": .string(link + "/approve"), "deny": .string(link + "/deny")],
                ]
            }
            let data: JSONValue = [
                "agent": .string(agent), "count": .number(Double(count)), "text": .string(headline), "approvals": .array(listed),
                "not_listed": .number(Double(max(0, count - approvals.count))), "links": ["pending": .string(pending)],
            ]
            return JSONValue.object(["type": .string(burstType), "timestamp": .string(EventCoding.timestamp(time)), "data": data]).canonicalJSON
        case .slack:
            var lines = approvals.map { approval in
                let id = approval.id.lowercasedString
                let link = "\(baseURL)/v1/approvals/\(id)"
                return "• \(Self.escape("\(approval.request.server)/\(approval.request.tool)")): <\(link)|\(id.prefix(8))>"
            }
            if count > approvals.count { lines.append("… and \(count - approvals.count) more") }
            let blocks: [JSONValue] = [
                ["type": "section", "text": ["type": "mrkdwn", "text": .string("*\(Self.escape(headline))*\n" + lines.joined(separator: "\n"))]],
                [
                    "type": "context",
                    "elements": [["type": "mrkdwn", "text": .string("<\(pending)|All pending requests of \(Self.escape(agent))>")]],
                ],
            ]
            return JSONValue.object(["text": .string(headline.escapingInvisibles()), "blocks": .array(blocks)]).canonicalJSON
        }
    }

    /// The arguments as one short line.
    static func summary(_ arguments: JSONValue) -> String {
        let text = arguments.canonicalJSON
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    /// Slack's mrkdwn control characters, escaped as its documentation says, and the characters a reviewer could not
    /// see (bidirectional controls, zero-width and control characters) written as `\u202E` escapes.
    static func escape(_ text: String) -> String {
        text.escapingInvisibles().replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// A made-up approval request in an endpoint's format, for `tollgate webhooks test`.
public enum WebhookSample {
    public static func body(for endpoint: WebhookConfig, baseURL: String) -> String {
        let now = Date()
        let requested = ApprovalRequested(
            approvalID: UUID(), callID: UUID(), agent: "sample-agent", grant: "sample", session: "sample-session",
            server: endpoint.servers.first ?? "sample-server", tool: "transfer", arguments: ["amount": 42, "to": "acct_sample"],
            argumentsHash: ToolCallDecided.hash(arguments: ["amount": 42, "to": "acct_sample"]), argumentsStorage: "full",
            policyHash: "sha256:sample", rule: "tools.transfer", reason: "a test delivery from tollgate webhooks test", quorum: 1, reviewers: [],
            category: "financial", requestedAt: now, expiresAt: now.addingTimeInterval(3600))
        return WebhookMessage.body(.requested, approval: Approval(requested), at: now, format: endpoint.format, baseURL: baseURL)
    }
}
