import Crypto
import Foundation
import TollgateCore

/// What an endpoint is sent about one approval event: the generic Standard Webhooks shape
/// (`{"type", "timestamp", "data"}`) or a Slack incoming-webhook message, with links to the reviewer pages (`/ui`)
/// and, in the generic format, to the approvals API.
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

    /// The reviewer page of one request, `<baseURL>/ui/approvals/<id>`.
    static func page(_ approval: Approval, baseURL: String) -> String {
        "\(baseURL)/ui/approvals/\(approval.id.lowercasedString)"
    }

    /// The reviewer page of an agent's pending requests, `<baseURL>/ui/pending?agent=<agent>`.
    static func pendingPage(agent: String, baseURL: String) -> String {
        "\(baseURL)/ui/pending?agent=\(agent.addingPercentEncoding(withAllowedCharacters: queryValueAllowed) ?? agent)"
    }

    /// What a query value may hold unescaped: RFC 3986's unreserved characters.
    private static let queryValueAllowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    /// The message's body. `interactive`: a Slack request message carries Approve and Deny buttons (the gateway has a
    /// `slack` app to receive their clicks).
    static func body(
        _ kind: WebhookConfig.Event, approval: Approval, at time: Date, format: WebhookConfig.Format, baseURL: String, interactive: Bool = false
    ) -> String {
        let id = approval.id.lowercasedString
        let link = "\(baseURL)/v1/approvals/\(id)"
        switch format {
        case .generic:
            var data = ApprovalRepresentation.json(approval, now: time, withArguments: true)
            if case .object(var fields) = data {
                fields["links"] = [
                    "page": .string(page(approval, baseURL: baseURL)), "approval": .string(link), "approve": .string(link + "/approve"),
                    "deny": .string(link + "/deny"),
                ]
                data = .object(fields)
            }
            return JSONValue.object(["type": .string(kind.rawValue), "timestamp": .string(EventCoding.timestamp(time)), "data": data]).canonicalJSON
        case .slack:
            return slack(kind, approval: approval, baseURL: baseURL, buttons: interactive && kind == .requested).canonicalJSON
        }
    }

    /// The Slack message about a request (`text` and `blocks`): its headline, details, a link to its page and, with
    /// `buttons`, the Approve and Deny buttons. `note` is a last context block (what a click on a button did).
    static func slack(_ kind: WebhookConfig.Event, approval: Approval, baseURL: String, buttons: Bool, note: String? = nil) -> JSONValue {
        let id = approval.id.lowercasedString
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
        if let change = request.definitionChange { details += Self.definitionLines(change) }
        if let denial = approval.denial { details += "\nReason: \(Self.escape(denial.reason))" }
        details += "\nApprovals: \(approval.grants.count) of \(request.quorum)"
        if !approval.grants.isEmpty { details += " (\(Self.escape(approval.grants.map(\.reviewer).joined(separator: ", "))))" }
        details += "; expires \(EventCoding.timestamp(request.expiresAt))"
        var blocks: [JSONValue] = [["type": "section", "text": ["type": "mrkdwn", "text": .string(details)]]]
        var links = "<\(page(approval, baseURL: baseURL))|Open approval \(id.prefix(8))>"
        if kind == .requested { links += " · or `tollgate approvals approve \(id)`" }
        blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": .string(links)]]])
        if buttons {
            blocks.append([
                "type": "actions", "block_id": "tollgate_decide",
                "elements": [
                    [
                        "type": "button", "action_id": .string(SlackBlocks.approveAction), "style": "primary", "value": .string(id),
                        "text": ["type": "plain_text", "text": "Approve"],
                    ],
                    [
                        "type": "button", "action_id": .string(SlackBlocks.denyAction), "style": "danger", "value": .string(id),
                        "text": ["type": "plain_text", "text": "Deny"],
                    ],
                ],
            ])
        }
        if let note { blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": .string(Self.escape(note))]]]) }
        return ["text": .string(headline.escapingInvisibles()), "blocks": .array(blocks)]
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
        let pendingLink = pendingPage(agent: agent, baseURL: baseURL)
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
                    "links": [
                        "page": .string(page(approval, baseURL: baseURL)), "approval": .string(link), "approve": .string(link + "/approve"),
                        "deny": .string(link + "/deny"),
                    ],
                ]
            }
            let data: JSONValue = [
                "agent": .string(agent), "count": .number(Double(count)), "text": .string(headline), "approvals": .array(listed),
                "not_listed": .number(Double(max(0, count - approvals.count))), "links": ["page": .string(pendingLink), "pending": .string(pending)],
            ]
            return JSONValue.object(["type": .string(burstType), "timestamp": .string(EventCoding.timestamp(time)), "data": data]).canonicalJSON
        case .slack:
            var lines = approvals.map { approval in
                "• \(Self.escape("\(approval.request.server)/\(approval.request.tool)")): <\(page(approval, baseURL: baseURL))|\(approval.id.lowercasedString.prefix(8))>"
            }
            if count > approvals.count { lines.append("… and \(count - approvals.count) more") }
            let blocks: [JSONValue] = [
                ["type": "section", "text": ["type": "mrkdwn", "text": .string("*\(Self.escape(headline))*\n" + lines.joined(separator: "\n"))]],
                [
                    "type": "context",
                    "elements": [["type": "mrkdwn", "text": .string("<\(pendingLink)|All pending requests of \(Self.escape(agent))>")]],
                ],
            ]
            return JSONValue.object(["text": .string(headline.escapingInvisibles()), "blocks": .array(blocks)]).canonicalJSON
        }
    }

    /// The arguments as one short line.
    /// A definition hold's diff for the Slack text: the first few changed members, each side cut to 200 characters.
    static func definitionLines(_ change: ApprovalRequested.DefinitionChangeReview) -> String {
        guard change.acceptedHash != nil else { return "\nTool definition: new, none accepted yet (approving accepts it)" }
        var text = "\nTool definition changed since the one accepted (approving accepts the new one):"
        func side(_ value: String?) -> String { value.map { Self.escape(String($0.prefix(200))) } ?? "(absent)" }
        for item in change.changes.prefix(3) {
            text += "\n• `\(Self.escape(item.member))`: `\(side(item.old))` → `\(side(item.new))`"
        }
        let more = change.changes.count - min(3, change.changes.count) + change.changesOmitted
        if more > 0 { text += "\n• and \(more) more (the page shows them all)" }
        if let note = change.note { text += "\n\(Self.escape(note))" }
        return text
    }

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
