import Foundation
import TollgateCore

/// One interaction Slack sends to `/integrations/slack/interactions` (a form body whose `payload` field is JSON), as far
/// as the gateway reads it: a click on an Approve or Deny button, or the submission of the deny dialog.
enum SlackInteraction: Equatable {
    /// A click on one of the message's buttons (`block_actions`).
    case click(Click)
    /// The deny dialog sent (`view_submission` of the `tollgate_deny` view).
    case denySubmitted(DenySubmission)
    /// Anything else Slack may send (another action, a closed dialog, a shortcut): answered 200 and ignored.
    case ignored(type: String)

    struct Click: Equatable {
        var userID: String
        var approve: Bool
        /// The button's value: the approval's id, as the message wrote it.
        var approvalID: String
        var responseURL: String?
        var triggerID: String?
    }

    struct DenySubmission: Equatable {
        var userID: String
        var approvalID: String
        var responseURL: String?
        /// What the reviewer typed; `nil` when the field is absent or empty.
        var reason: String?
    }

    /// Why a body is not an interaction the gateway can read (answered 400).
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Characters the gateway reads from an id, a URL or a trigger in the payload, so a hostile value cannot be huge.
    static let maxFieldLength = 4096

    /// Reads the form body's `payload`.
    static func parse(form body: [UInt8]) throws(Malformed) -> SlackInteraction {
        guard let text = String(validating: body, as: UTF8.self) else { throw Malformed(description: "the body is not UTF-8") }
        var payload: String?
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let name = decode(parts[0]), let value = decode(parts[1]) else {
                throw Malformed(description: "the body is not application/x-www-form-urlencoded")
            }
            guard name == "payload" else { continue }
            guard payload == nil else { throw Malformed(description: "the body has more than one payload field") }
            payload = value
        }
        guard let payload else { throw Malformed(description: "the body has no payload field") }
        let json: JSONValue
        do {
            json = try JSONValue(parsing: payload, maxDepth: 32)
        } catch {
            throw Malformed(description: "the payload is not JSON: \(error)")
        }
        return try parse(payload: json)
    }

    static func parse(payload: JSONValue) throws(Malformed) -> SlackInteraction {
        guard case .object = payload, let type = field(payload["type"]) else { throw Malformed(description: "the payload has no type") }
        switch type {
        case "block_actions":
            guard let userID = field(payload["user"]?["id"]) else { throw Malformed(description: "the payload has no user.id") }
            for action in payload["actions"]?.arrayValue ?? [] {
                let actionID = field(action["action_id"])
                guard actionID == SlackBlocks.approveAction || actionID == SlackBlocks.denyAction else { continue }
                guard let value = field(action["value"]) else { throw Malformed(description: "the button has no value") }
                return .click(
                    Click(
                        userID: userID, approve: actionID == SlackBlocks.approveAction, approvalID: value,
                        responseURL: field(payload["response_url"]),
                        triggerID: field(payload["trigger_id"])))
            }
            return .ignored(type: type)
        case "view_submission":
            guard field(payload["view"]?["callback_id"]) == SlackBlocks.denyCallback else { return .ignored(type: type) }
            guard let userID = field(payload["user"]?["id"]) else { throw Malformed(description: "the payload has no user.id") }
            guard let metadataText = field(payload["view"]?["private_metadata"]),
                let metadata = try? JSONValue(parsing: metadataText, maxDepth: 4), let approvalID = field(metadata["approval"])
            else { throw Malformed(description: "the dialog's private_metadata is not the one the gateway wrote") }
            let value = payload["view"]?["state"]?["values"]?[SlackBlocks.reasonBlock]?[SlackBlocks.reasonAction]?["value"]?.stringValue
            return .denySubmitted(
                DenySubmission(
                    userID: userID, approvalID: approvalID, responseURL: field(metadata["response_url"]),
                    reason: value.flatMap { $0.isEmpty ? nil : $0 }))
        default:
            return .ignored(type: String(type.prefix(64)))
        }
    }

    /// A string field of bounded length; `nil` when absent, not a string, empty or too long.
    private static func field(_ value: JSONValue?) -> String? {
        guard let text = value?.stringValue, !text.isEmpty, text.utf8.count <= maxFieldLength else { return nil }
        return text
    }

    /// A form-urlencoded name or value: `+` is a space, `%XX` a byte; `nil` for a bad escape or bytes that are not UTF-8.
    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
