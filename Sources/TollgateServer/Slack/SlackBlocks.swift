import Foundation
import TollgateCore

/// What the gateway sends Slack: the names its buttons and dialog carry, the deny dialog (`views.open`), and the
/// messages posted to an interaction's `response_url`.
enum SlackBlocks {
    static let approveAction = "tollgate_approve"
    static let denyAction = "tollgate_deny"
    /// The deny dialog's `callback_id`.
    static let denyCallback = "tollgate_deny"
    /// The dialog's reason field: its block and its element.
    static let reasonBlock = "reason"
    static let reasonAction = "reason"

    /// The dialog asking `approval`'s reviewer why it is denied. Its `private_metadata` carries the approval's id and
    /// the message's `response_url`, which Slack gives back with the submission.
    static func denyDialog(_ approval: Approval, responseURL: String?) -> JSONValue {
        var metadata: [String: JSONValue] = ["approval": .string(approval.id.lowercasedString)]
        if let responseURL { metadata["response_url"] = .string(responseURL) }
        let request = approval.request
        let summary =
            "*\(WebhookMessage.escape(request.agent))* wants to call *\(WebhookMessage.escape("\(request.server)/\(request.tool)"))*"
            + "\nArguments: `\(WebhookMessage.escape(request.arguments.map { WebhookMessage.summary($0) } ?? "(not stored)"))`"
        return [
            "type": "modal", "callback_id": .string(denyCallback), "private_metadata": .string(JSONValue.object(metadata).canonicalJSON),
            "title": ["type": "plain_text", "text": "Deny the request"],
            "submit": ["type": "plain_text", "text": "Deny"],
            "close": ["type": "plain_text", "text": "Cancel"],
            "blocks": [
                ["type": "section", "text": ["type": "mrkdwn", "text": .string(summary)]],
                [
                    "type": "input", "block_id": .string(reasonBlock),
                    "label": ["type": "plain_text", "text": "Why is it denied? (the agent is shown this)"],
                    "element": [
                        "type": "plain_text_input", "action_id": .string(reasonAction), "multiline": true,
                        "max_length": .number(Double(ApprovalDecisions.maxTextLength)),
                    ],
                ],
            ],
        ]
    }

    /// The message, replaced for everyone in the channel, as `approval` stands now: decided, or still pending with its
    /// buttons; `note` says what the click did (who approved, or the refusal in words).
    static func update(_ approval: Approval, note: String, baseURL: String, now: Date) -> JSONValue {
        let kind: WebhookConfig.Event
        switch approval.status(at: now) {
        case .pending: kind = .requested
        case .approved, .denied: kind = .decided
        case .expired: kind = .expired
        }
        guard case .object(var message) = WebhookMessage.slack(kind, approval: approval, baseURL: baseURL, buttons: kind == .requested, note: note)
        else { return .null }
        message["replace_original"] = true
        return .object(message)
    }

    /// A message only the clicking member sees, leaving the original as it is.
    static func ephemeral(_ text: String) -> JSONValue {
        ["response_type": "ephemeral", "replace_original": false, "text": .string(WebhookMessage.escape(text))]
    }

    /// The answer to a dialog submission that keeps the dialog open with `message` under the reason field.
    static func dialogError(_ message: String) -> JSONValue {
        ["response_action": "errors", "errors": [reasonBlock: .string(message)]]
    }
}
