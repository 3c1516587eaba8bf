import Foundation
import TollgateCore
import XCTest

@testable import TollgateServer

/// Slack's request signature and payloads, without a gateway: Slack's own worked example, the time window both ways,
/// and what the form parser refuses.
final class SlackSignatureTests: XCTestCase {
    // The worked example of Slack's "Verifying requests from Slack" (api.slack.com/authentication/verifying-requests-from-slack).
    static let documentedSecret = "8f742231b10e8888abcd99yyyzzz85a5"
    static let documentedTimestamp = "1531420618"
    static let documentedBody =
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA"
        + "&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554"
        + "%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    static let documentedSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

    func testSlacksWorkedExampleVerifiesAndAnyChangeDoesNot() {
        let body = Array(Self.documentedBody.utf8)
        let at = Date(timeIntervalSince1970: 1_531_420_618 + 60)
        XCTAssertEqual(
            SlackSignature.signature(body: body, timestamp: Self.documentedTimestamp, secret: Self.documentedSecret), Self.documentedSignature)
        func check(
            _ body: [UInt8], _ timestamp: String?, _ signature: String?, secret: String = SlackSignatureTests.documentedSecret, now: Date = at
        ) -> SlackSignature
            .Refusal?
        {
            if case .failure(let refusal) = SlackSignature.check(body: body, timestamp: timestamp, signature: signature, secret: secret, now: now) {
                return refusal
            }
            return nil
        }
        XCTAssertNil(check(body, Self.documentedTimestamp, Self.documentedSignature))
        XCTAssertNil(check(body, Self.documentedTimestamp, Self.documentedSignature.uppercased().replacingOccurrences(of: "V0=", with: "v0=")))
        XCTAssertEqual(check(body + [0x20], Self.documentedTimestamp, Self.documentedSignature), .wrongSignature)
        XCTAssertEqual(check(body, Self.documentedTimestamp, Self.documentedSignature, secret: "another-secret-of-some-length"), .wrongSignature)
        XCTAssertEqual(check(body, "1531420619", Self.documentedSignature), .wrongSignature)
        var flipped = Array(Self.documentedSignature)
        flipped[66] = flipped[66] == "3" ? "4" : "3"
        XCTAssertEqual(check(body, Self.documentedTimestamp, String(flipped)), .wrongSignature)
        XCTAssertEqual(check(body, nil, Self.documentedSignature), .missingTimestamp)
        XCTAssertEqual(check(body, Self.documentedTimestamp, nil), .missingSignature)
        for malformed in ["", "v0=", "v0=zz", "v1=" + Self.documentedSignature.dropFirst(3), Self.documentedSignature + "00", "a2114d57"] {
            XCTAssertEqual(check(body, Self.documentedTimestamp, malformed), .malformedSignature, malformed)
        }
        for timestamp in ["", "-1531420618", "1531420618.5", " 1531420618", "0x5B4", String(repeating: "9", count: 40)] {
            XCTAssertEqual(check(body, timestamp, Self.documentedSignature), .malformedTimestamp, timestamp)
        }
        // Five minutes either way, and not a second more.
        XCTAssertNil(check(body, Self.documentedTimestamp, Self.documentedSignature, now: Date(timeIntervalSince1970: 1_531_420_618 + 300)))
        XCTAssertNil(check(body, Self.documentedTimestamp, Self.documentedSignature, now: Date(timeIntervalSince1970: 1_531_420_618 - 300)))
        XCTAssertEqual(
            check(body, Self.documentedTimestamp, Self.documentedSignature, now: Date(timeIntervalSince1970: 1_531_420_618 + 301)),
            .outsideWindow(skew: -301))
        XCTAssertEqual(
            check(body, Self.documentedTimestamp, Self.documentedSignature, now: Date(timeIntervalSince1970: 1_531_420_618 - 301)),
            .outsideWindow(skew: 301))
    }

    func testTheFormParserReadsClicksAndSubmissionsAndRefusesTheRest() throws {
        func form(_ payload: JSONValue) -> [UInt8] {
            Array(("payload=" + payload.canonicalJSON.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!).utf8)
        }
        let id = UUID().lowercasedString
        let click: JSONValue = [
            "type": "block_actions", "user": ["id": "U012AB3CD"], "trigger_id": "1.2.3", "response_url": "https://hooks.slack.com/actions/T/1/x",
            "actions": [["action_id": "something_else", "value": "x"], ["action_id": "tollgate_deny", "value": .string(id)]],
        ]
        XCTAssertEqual(
            try SlackInteraction.parse(form: Array("team=T1&".utf8) + form(click)),
            .click(
                .init(userID: "U012AB3CD", approve: false, approvalID: id, responseURL: "https://hooks.slack.com/actions/T/1/x", triggerID: "1.2.3")))
        let submission: JSONValue = [
            "type": "view_submission", "user": ["id": "U012AB3CD"],
            "view": [
                "callback_id": "tollgate_deny", "private_metadata": .string(#"{"approval":"\#(id)","response_url":"https://hooks.slack.com/a"}"#),
                "state": ["values": ["reason": ["reason": ["type": "plain_text_input", "value": "not today"]]]],
            ],
        ]
        XCTAssertEqual(
            try SlackInteraction.parse(form: form(submission)),
            .denySubmitted(.init(userID: "U012AB3CD", approvalID: id, responseURL: "https://hooks.slack.com/a", reason: "not today")))
        XCTAssertEqual(try SlackInteraction.parse(form: form(["type": "view_closed", "user": ["id": "U1"]])), .ignored(type: "view_closed"))
        XCTAssertEqual(
            try SlackInteraction.parse(form: form(["type": "block_actions", "user": ["id": "U1"], "actions": [["action_id": "other"]]])),
            .ignored(type: "block_actions"))

        let nested = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        let malformed: [[UInt8]] = [
            [], Array("payload".utf8), Array("token=x".utf8), Array("payload=%zz".utf8), Array("payload=not%20json".utf8),
            Array("payload=%7B%7D&payload=%7B%7D".utf8), [0x70, 0x61, 0x79, 0x6C, 0x6F, 0x61, 0x64, 0x3D, 0xFF, 0xFE],
            Array("payload=\(nested.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)".utf8),
            form(["type": "block_actions", "actions": [["action_id": "tollgate_approve", "value": .string(id)]]]),
            form(["type": "block_actions", "user": ["id": "U1"], "actions": [["action_id": "tollgate_approve"]]]),
            form(["type": "view_submission", "user": ["id": "U1"], "view": ["callback_id": "tollgate_deny", "private_metadata": "{"]]),
            form(["user": ["id": "U1"]]), form(["type": .number(5)]), form(.array([])),
        ]
        for body in malformed {
            XCTAssertThrowsError(try SlackInteraction.parse(form: body), String(decoding: body, as: UTF8.self))
        }
    }

    func testResponseURLsOutsideThePrefixAreNeverPostedTo() {
        let prefix = "https://hooks.slack.com/"
        XCTAssertTrue(SlackClient.mayPost(to: "https://hooks.slack.com/actions/T0/1/abc", prefix: prefix))
        for url in [
            "https://hooks.slack.com.evil.example/actions", "https://evil.example/https://hooks.slack.com/", "http://hooks.slack.com/actions",
            "https://hooks.slack.com/../x", "https://hooks.slack.com/a b", "https://hooks.slack.com/a\\b", "https://hooks.slack.com/a#b",
            "https://hooks.slack.com/" + String(repeating: "a", count: 3000), "HTTPS://HOOKS.SLACK.COM/actions", "",
        ] {
            XCTAssertFalse(SlackClient.mayPost(to: url, prefix: prefix), url)
        }
    }

    func testTheReplayGuardTakesASignatureOnceWithinTheWindow() {
        let guardian = SlackReplayGuard(keep: 600)
        let now = Date()
        XCTAssertTrue(guardian.firstUse("v0=a", now: now))
        XCTAssertFalse(guardian.firstUse("v0=a", now: now.addingTimeInterval(599)))
        XCTAssertTrue(guardian.firstUse("v0=b", now: now))
        XCTAssertTrue(guardian.firstUse("v0=a", now: now.addingTimeInterval(601)), "past the window its timestamp refuses it anyway")
    }
}
