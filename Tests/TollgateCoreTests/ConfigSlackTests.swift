import Foundation
import Testing

@testable import TollgateCore

@Suite("Gateway configuration: slack")
struct ConfigSlackTests {
    static let environment = ["SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5", "SLACK_BOT_TOKEN": "xoxb-1-2-abc"]

    @Test func theSlackAppAndMemberIdsLoadWithTheirDefaults() throws {
        let config = try loadConfig(
            """
            slack: {signing_secret: "${SLACK_SIGNING_SECRET}", bot_token: "${SLACK_BOT_TOKEN}"}
            reviewers:
              - {id: alice, token_hash: "\(exampleKeyHash("a"))", slack_user_id: U012AB3CD}
              - {id: bob, token_hash: "\(exampleKeyHash("b"))"}
            """, environment: Self.environment)
        let slack = try #require(config.slack)
        #expect(slack.signingSecret == "8f742231b10e8888abcd99yyyzzz85a5")
        #expect(slack.botToken == "xoxb-1-2-abc")
        #expect(slack.apiURL == "https://slack.com/api")
        #expect(slack.responseURLPrefix == "https://hooks.slack.com/")
        #expect(!slack.description.contains("8f742231") && !slack.description.contains("xoxb-1-2-abc"), "secrets stay out of descriptions")
        #expect(config.reviewers.map(\.slackUserID) == ["U012AB3CD", nil])
        #expect(try loadConfig("listen: 127.0.0.1:1").slack == nil)

        let local = try loadConfig(
            """
            slack: {signing_secret: "${SLACK_SIGNING_SECRET}", bot_token: "${SLACK_BOT_TOKEN}", api_url: "http://127.0.0.1:9/api/",
                    response_url_prefix: "http://127.0.0.1:9/hooks/"}
            """, environment: Self.environment)
        #expect(local.slack?.apiURL == "http://127.0.0.1:9/api")
        #expect(local.slack?.responseURLPrefix == "http://127.0.0.1:9/hooks/")
    }

    @Test func everySlackProblemIsReportedWithItsPathAndNoSecretIsEchoed() throws {
        let found = configDiagnostics(
            """
            slack: {signing_secret: "short secret", bot_token: "xoxp-user-token-0000", api_url: "ftp://slack.com", response_url_prefix: "https://hooks.slack.com",
                    channel: x}
            reviewers:
              - {id: alice, token_hash: "\(exampleKeyHash("a"))", slack_user_id: u012ab3cd}
              - {id: bob, token_hash: "\(exampleKeyHash("b"))", slack_user_id: U012AB3CD}
              - {id: carol, token_hash: "\(exampleKeyHash("c"))", slack_user_id: U012AB3CD}
              - {id: dave, token_hash: "\(exampleKeyHash("d"))", slack_user_id: "@dave"}
            """)
        let paths = found.map(\.path)
        for path in [
            "slack.signing_secret", "slack.bot_token", "slack.api_url", "slack.response_url_prefix", "slack.channel", "reviewers[0].slack_user_id",
            "reviewers[2].slack_user_id", "reviewers[3].slack_user_id",
        ] {
            #expect(paths.contains(path), "\(path) in \(paths)")
        }
        #expect(!paths.contains("reviewers[1].slack_user_id"))
        #expect(found.first { $0.path == "reviewers[0].slack_user_id" }?.suggestion == "U012AB3CD")
        #expect(found.first { $0.path == "reviewers[2].slack_user_id" }?.code == .duplicateEntry)
        #expect(found.first { $0.path == "slack.response_url_prefix" }?.suggestion == "https://hooks.slack.com/")
        #expect(found.first { $0.path == "slack.channel" }?.code == .unknownKey)
        let text = found.map { "\($0.message) \($0.allowed ?? "")" }.joined(separator: "\n")
        #expect(!text.contains("short secret") && !text.contains("xoxp-user-token-0000"), "\(text)")

        let missing = configDiagnostics("slack: {api_url: \"https://slack.com/api\"}")
        #expect(Set(missing.map(\.path)) == ["slack.signing_secret", "slack.bot_token"])
        #expect(missing.allSatisfy { $0.code == .missingField })
        let unset = configDiagnostics(#"slack: {signing_secret: "${SLACK_SIGNING_SECRET}", bot_token: "${SLACK_BOT_TOKEN}"}"#)
        #expect(unset.map(\.path) == ["slack.signing_secret", "slack.bot_token"], "an unset variable never becomes an empty secret")
        let newline = configDiagnostics(
            #"slack: {signing_secret: "${S}", bot_token: "xoxb-1-2-abc"}"#, environment: ["S": "8f742231b10e8888abcd99yyyzzz85a5\n"])
        #expect(newline.map(\.path) == ["slack.signing_secret"])
        #expect(configDiagnostics("slack: [x]").map(\.path) == ["slack"])
    }
}
