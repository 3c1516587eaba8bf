import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import TollgateCore

/// The gateway's requests to Slack: `views.open` on the configured Web API (with the bot token) and messages to an
/// interaction's `response_url`, which must start with `slack.response_url_prefix` (`https://hooks.slack.com/`): a
/// URL taken from a payload is never posted to otherwise. Every request has a time-out and follows no redirect.
struct SlackClient: Sendable {
    let config: SlackConfig
    let logger: Logger
    var http: HTTPClient = SlackClient.client

    /// `views.open` must be called within 3 s of the click (its trigger expires), so it gets no longer.
    static let viewsOpenTimeout: TimeAmount = .seconds(3)
    static let responseTimeout: TimeAmount = .seconds(5)
    /// Bytes read of Slack's answer.
    static let maxAnswerBytes = 64 * 1024

    /// One client for the process, made the first time Slack is called (only gateways with a `slack` app make it):
    /// no redirects, a bounded connect.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(3))
        configuration.connectionPool = .init(idleTimeout: .seconds(30))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Whether the gateway may post to `url`: it starts with the allowed prefix (which ends its host with a `/`), is
    /// printable ASCII without spaces, backslashes, `..` or a fragment, and is at most 2048 bytes.
    static func mayPost(to url: String, prefix: String) -> Bool {
        url.utf8.count <= 2048 && url.hasPrefix(prefix) && url.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }
            && !url.contains("..") && !url.contains("#")
    }

    /// Posts `message` to an interaction's `response_url`; `false` (and a log line) when the URL is not allowed or the
    /// post failed.
    @discardableResult
    func respond(to responseURL: String?, _ message: JSONValue) async -> Bool {
        guard let responseURL else { return false }
        guard Self.mayPost(to: responseURL, prefix: config.responseURLPrefix) else {
            logger.warning(
                "slack: a response_url outside slack.response_url_prefix was not posted to",
                metadata: ["response_url": "\(responseURL.prefix(200))", "allowed_prefix": "\(config.responseURLPrefix)"])
            return false
        }
        do {
            let (status, _) = try await post(responseURL, message, headers: [:], timeout: Self.responseTimeout)
            guard (200..<300).contains(status) else {
                logger.warning("slack: the response_url answered \(status)", metadata: ["response_url": "\(responseURL.prefix(200))"])
                return false
            }
            return true
        } catch {
            logger.warning("slack: cannot post to the response_url", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Opens `view` for the member who clicked (`views.open`); the error in words when Slack refused or did not answer.
    func openView(triggerID: String, _ view: JSONValue) async -> String? {
        let url = config.apiURL + "/views.open"
        do {
            let (status, answer) = try await post(
                url, ["trigger_id": .string(triggerID), "view": view], headers: ["Authorization": "Bearer \(config.botToken)"],
                timeout: Self.viewsOpenTimeout)
            let json = try? JSONValue(parsing: Data(answer))
            if (200..<300).contains(status), json?["ok"]?.boolValue == true { return nil }
            let error = json?["error"]?.stringValue.map { String($0.prefix(200)) } ?? "HTTP \(status)"
            logger.warning("slack: views.open failed", metadata: ["error": "\(error)"])
            return "Slack did not open the dialog (\(error))"
        } catch {
            logger.warning("slack: views.open failed", metadata: ["error": "\(error)"])
            return "Slack did not answer in time to open the dialog"
        }
    }

    private func post(_ url: String, _ body: JSONValue, headers: [String: String], timeout: TimeAmount) async throws -> (Int, [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        request.headers.add(name: "User-Agent", value: "tollgate-slack/1")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body.canonicalJSON))
        let deadline = NIODeadline.now() + timeout
        let response = try await http.execute(request, deadline: deadline)
        var buffer = try await response.body.collect(upTo: Self.maxAnswerBytes)
        return (Int(response.status.code), buffer.readBytes(length: buffer.readableBytes) ?? [])
    }
}
