extension GatewayConfigDecoder {
    static let slackKeys = ["signing_secret", "bot_token", "api_url", "response_url_prefix"]

    /// `slack`: the app's secrets and where the gateway may send requests. Secret values are never echoed in a message.
    mutating func decodeSlack(_ node: SourceNode) -> SlackConfig? {
        guard let fields = members(of: node, at: "slack", allowed: Self.slackKeys, required: ["signing_secret", "bot_token"]) else { return nil }
        var valid = true
        var signingSecret: String?
        if let member = fields["signing_secret"] {
            signingSecret = secret(
                member.value, at: "slack.signing_secret", lengths: 16...256, prefix: nil,
                allowed: "the app's Signing Secret (Basic Information → App Credentials), from the environment: \"${SLACK_SIGNING_SECRET}\"")
            valid = valid && signingSecret != nil
        }
        var botToken: String?
        if let member = fields["bot_token"] {
            botToken = secret(
                member.value, at: "slack.bot_token", lengths: 10...512, prefix: "xoxb-",
                allowed: "the app's Bot User OAuth Token (xoxb-...), from the environment: \"${SLACK_BOT_TOKEN}\"")
            valid = valid && botToken != nil
        }
        var config = SlackConfig(signingSecret: signingSecret ?? "", botToken: botToken ?? "")
        if let value = Self.value(fields, "api_url") {
            if let url = httpURL(value, at: "slack.api_url", example: SlackConfig.defaultAPIURL) {
                config.apiURL = url.hasSuffix("/") ? String(url.dropLast()) : url
            } else {
                valid = false
            }
        }
        if let value = Self.value(fields, "response_url_prefix") {
            let path = "slack.response_url_prefix"
            if let url = httpURL(value, at: path, example: SlackConfig.defaultResponseURLPrefix) {
                // The prefix must end the host with a path, or `https://hooks.slack.com` would let `https://hooks.slack.com.example` in.
                let afterScheme = url.range(of: "://").map { url[$0.upperBound...] } ?? ""
                if afterScheme.contains("/"), url.hasSuffix("/"), !url.contains("?"), !url.contains("#") {
                    config.responseURLPrefix = url
                } else {
                    valid = false
                    report(
                        .invalidValue, at: value.location, path, "\(AddressSyntax.quoted(url)) must end with `/` after the host (and hold no ? or #)",
                        allowed: "a scheme, a host and a path ending in /, such as https://hooks.slack.com/",
                        suggestion: afterScheme.contains("/") || url.contains("?") || url.contains("#") ? nil : url + "/")
                }
            } else {
                valid = false
            }
        }
        return valid && signingSecret != nil && botToken != nil ? config : nil
    }

    /// `reviewers[].slack_user_id`: a Slack member id, `U` or `W` and 8 to 20 uppercase letters or digits.
    mutating func slackUserID(_ node: SourceNode, at path: String, entry: String, seen: inout [String: String]) -> String? {
        guard let text = text(node, at: path) else { return nil }
        guard Self.isSlackUserID(text) else {
            report(
                .invalidValue, at: node.location, path, "\(AddressSyntax.quoted(text)) is not a Slack member id",
                allowed: "U or W and 8 to 20 uppercase letters or digits, such as U012AB3CD (Slack: the member's profile → ⋮ → Copy member ID)",
                suggestion: Self.isSlackUserID(text.uppercased()) ? text.uppercased() : nil)
            return nil
        }
        if let first = seen[text] {
            report(
                .duplicateEntry, at: node.location, path, "the Slack member id `\(text)` is already \(first)'s; a click must decide as one reviewer",
                allowed: "each Slack member id once")
            return nil
        }
        seen[text] = entry
        return text
    }

    static func isSlackUserID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (9...21).contains(bytes.count), bytes[0] == UInt8(ascii: "U") || bytes[0] == UInt8(ascii: "W") else { return false }
        return bytes.dropFirst().allSatisfy {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
        }
    }

    /// A secret: printable ASCII without spaces, `lengths` bytes long, starting with `prefix`; reported without its value.
    private mutating func secret(_ node: SourceNode, at path: String, lengths: ClosedRange<Int>, prefix: String?, allowed: String) -> String? {
        guard let text = text(node, at: path, allowed: allowed) else { return nil }
        let message: String?
        if !text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            message = "the value holds spaces, control characters or non-ASCII characters (a line break read from a file?)"
        } else if !lengths.contains(text.utf8.count) {
            message = "the value has \(text.utf8.count) characters; it must have \(lengths.lowerBound) to \(lengths.upperBound)"
        } else if let prefix, !text.hasPrefix(prefix) {
            message = "the value does not start with `\(prefix)`"
        } else {
            message = nil
        }
        if let message {
            report(.invalidValue, at: node.location, path, message, allowed: allowed)
            return nil
        }
        return text
    }
}
