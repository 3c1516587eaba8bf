/// The Slack app that lets reviewers decide from the buttons of `slack`-format webhook messages: the secret Slack
/// signs its interaction requests with, the bot token for opening the deny dialog, and where the gateway may send
/// requests (Slack's Web API, and the `response_url`s of interactions, which must start with `responseURLPrefix`).
///
/// ```yaml
/// slack:
///   signing_secret: "${SLACK_SIGNING_SECRET}"
///   bot_token: "${SLACK_BOT_TOKEN}"
/// reviewers:
///   - {id: alice, token_hash: "sha256:...", slack_user_id: U012AB3CD}
/// ```
public struct SlackConfig: Sendable, Equatable, CustomStringConvertible {
    /// The app's signing secret (Basic Information → App Credentials): the HMAC key of `X-Slack-Signature`.
    public var signingSecret: String
    /// The bot user OAuth token (`xoxb-...`), for `views.open`.
    public var botToken: String
    /// Slack's Web API, without a trailing `/`.
    public var apiURL: String
    /// What every `response_url` the gateway posts to must start with (a scheme, a host and a path ending in `/`).
    public var responseURLPrefix: String

    public static let defaultAPIURL = "https://slack.com/api"
    public static let defaultResponseURLPrefix = "https://hooks.slack.com/"

    public init(
        signingSecret: String, botToken: String, apiURL: String = Self.defaultAPIURL, responseURLPrefix: String = Self.defaultResponseURLPrefix
    ) {
        self.signingSecret = signingSecret
        self.botToken = botToken
        self.apiURL = apiURL
        self.responseURLPrefix = responseURLPrefix
    }

    /// The settings without the secrets, for logs and test failures.
    public var description: String {
        "SlackConfig(signingSecret: <\(signingSecret.utf8.count) bytes>, botToken: <\(botToken.utf8.count) bytes>, apiURL: \(apiURL), "
            + "responseURLPrefix: \(responseURLPrefix))"
    }
}
