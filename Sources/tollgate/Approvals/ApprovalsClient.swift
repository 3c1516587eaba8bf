import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TollgateCore
import Yams

/// The approvals API as the command line calls it: where the gateway is, the reviewer's token, and one request at a
/// time with a bounded time-out. Errors carry the API's code and message.
struct ApprovalsClient {
    let server: String
    let token: String
    let client: HTTPClient

    /// What went wrong, as the person at the terminal should read it.
    struct Failure: Error, CustomStringConvertible {
        var code: String
        var message: String
        var status: Int?
        var body: JSONValue?
        var description: String { "\(code): \(message)" }
    }

    /// Where the command-line settings file is: `$XDG_CONFIG_HOME/tollgate/cli.yaml`, else `~/.config/tollgate/cli.yaml`.
    static func settingsPath(environment: [String: String]) -> String {
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.config")
        return base + "/tollgate/cli.yaml"
    }

    /// Resolves the server and the token: options first, then the environment, then the settings file.
    static func settings(server: String?, tokenFile: String?, environment: [String: String]) throws -> (server: String, token: String) {
        var fileServer: String?
        var fileToken: String?
        let path = settingsPath(environment: environment)
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path), data.count <= 64 * 1024, let text = String(data: data, encoding: .utf8)
            else {
                throw Failure(code: "settings", message: "\(path) cannot be read as UTF-8 text of at most 64 KiB")
            }
            let document: Any?
            do {
                document = try Yams.load(yaml: text)
            } catch {
                throw Failure(code: "settings", message: "\(path) is not valid YAML: \(error)")
            }
            guard let mapping = (document ?? [String: Any]()) as? [String: Any] else {
                throw Failure(code: "settings", message: "\(path) must be a mapping with `server:` and `token:`")
            }
            for key in mapping.keys where key != "server" && key != "token" {
                throw Failure(code: "settings", message: "\(path): unknown key `\(key.prefix(64))`; allowed: server, token")
            }
            fileServer = mapping["server"] as? String
            fileToken = mapping["token"] as? String
        }
        let server = server ?? environment["TOLLGATE_SERVER"].flatMap { $0.isEmpty ? nil : $0 } ?? fileServer ?? "http://127.0.0.1:8420"
        guard let url = URL(string: server), let scheme = url.scheme, scheme == "http" || scheme == "https", url.host != nil else {
            throw Failure(code: "usage", message: "--server `\(server.prefix(200))` is not an http:// or https:// URL")
        }
        var token: String?
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile), data.count <= 4096 else {
                throw Failure(code: "usage", message: "--token-file \(tokenFile) cannot be read (or is larger than 4 KiB)")
            }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        token = token ?? environment["TOLLGATE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 } ?? fileToken
        guard let token, !token.isEmpty else {
            throw Failure(
                code: "usage",
                message:
                    "no reviewer token: set TOLLGATE_TOKEN, pass --token-file, or put `token:` in \(path) (make one with tollgate keys new NAME --reviewer reviewer)"
            )
        }
        guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw Failure(code: "usage", message: "the token contains spaces or characters that are not printable ASCII")
        }
        return (server.hasSuffix("/") ? String(server.dropLast()) : server, token)
    }

    /// Sends one request and returns the JSON answer, or throws the API's error.
    func send(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        var request = HTTPClientRequest(url: server + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.canonicalJSON))
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(30))
        } catch {
            throw Failure(code: "unreachable", message: "cannot reach the gateway at \(server): \(error)")
        }
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let text = String(buffer: bytes)
        let value = try? JSONValue(parsing: text)
        guard (200..<300).contains(Int(response.status.code)) else {
            if let error = value?["error"], let code = error["code"]?.stringValue {
                throw Failure(code: code, message: error["message"]?.stringValue ?? "", status: Int(response.status.code), body: value)
            }
            throw Failure(
                code: "http_\(response.status.code)", message: "the gateway answered \(response.status) without an API error",
                status: Int(response.status.code))
        }
        guard let value else { throw Failure(code: "invalid_response", message: "the gateway's answer is not JSON") }
        return value
    }

    /// `/v1/approvals` with these query parameters, percent-encoded.
    static func listPath(_ parameters: [(String, String?)]) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        let query = parameters.compactMap { name, value in
            value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
        }
        return "/v1/approvals" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }
}

/// Tables and lines for people.
enum ApprovalsText {
    static func table(_ items: [JSONValue], now: Date = Date()) -> String {
        let header = ["ID", "STATUS", "SERVER", "TOOL", "AGENT", "APPROVALS", "REQUESTED", "EXPIRES"]
        var rows = [header]
        for item in items {
            rows.append(
                [
                    item["id"]?.stringValue ?? "", status(item), item["server"]?.stringValue ?? "", item["tool"]?.stringValue ?? "",
                    item["agent"]?.stringValue ?? "", "\(Int(item["approvals"]?.arrayValue?.count ?? 0))/\(Int(item["quorum"]?.doubleValue ?? 1))",
                    relative(item["requested_at"]?.stringValue, now: now), relative(item["expires_at"]?.stringValue, now: now),
                ].map { $0.escapingInvisibles() })
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func status(_ item: JSONValue) -> String {
        let status = item["status"]?.stringValue ?? "?"
        return item["consumed"]?.boolValue == true ? status + " (used)" : status
    }

    static func detail(_ item: JSONValue) -> String {
        func text(_ key: String) -> String {
            guard let value = item[key] else { return "-" }
            if case .null = value { return "-" }
            return value.stringValue ?? value.canonicalJSON
        }
        var lines = [
            "approval   \(text("id"))", "status     \(status(item))", "tool       \(text("server")) / \(text("tool"))",
            "agent      \(text("agent")) (grant \(text("grant")), session \(text("session")))",
            "rule       \(text("rule")) (policy \(text("policy_hash")))", "reason     \(text("reason"))",
            "quorum     \(Int(item["approvals"]?.arrayValue?.count ?? 0)) of \(text("quorum"))"
                + (item["reviewers"]?.arrayValue?.isEmpty == false
                    ? " from " + (item["reviewers"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", ") : " from any reviewer"),
            "requested  \(text("requested_at"))", "expires    \(text("expires_at"))",
        ]
        for grant in item["approvals"]?.arrayValue ?? [] {
            let comment = grant["comment"]?.stringValue.map { ": \($0)" } ?? ""
            lines.append("approved   by \(grant["reviewer"]?.stringValue ?? "?") at \(grant["at"]?.stringValue ?? "?")\(comment)")
        }
        if let denial = item["denial"], denial.objectValue != nil {
            lines.append(
                "denied     by \(denial["reviewer"]?.stringValue ?? "?") at \(denial["at"]?.stringValue ?? "?"): \(denial["reason"]?.stringValue ?? "")"
            )
        }
        if let change = item["definition_change"], change.objectValue != nil {
            let accepted = change["accepted_hash"]?.stringValue
            lines.append(
                "definition \(text("definition_hash").prefix(12)) "
                    + (accepted.map { "changed from the accepted \($0.prefix(12)); approving accepts it" }
                        ?? "new: none accepted; approving accepts it"))
            if let note = change["note"]?.stringValue { lines.append("           \(note)") }
            for item in change["changes"]?.arrayValue ?? [] {
                lines.append("  ~ \(item["member"]?.stringValue ?? "?")")
                lines.append("    - \(item["old"]?.stringValue ?? "(absent)")")
                lines.append("    + \(item["new"]?.stringValue ?? "(absent)")")
            }
            if let omitted = change["changes_omitted"]?.doubleValue, omitted > 0 { lines.append("  (\(Int(omitted)) more changed members)") }
        }
        if item["consumed"]?.boolValue == true { lines.append("used       by call \(text("consumed_by_call")) at \(text("consumed_at"))") }
        lines.append("arguments  (\(text("arguments_storage")), sha256 \(text("arguments_hash")))")
        if let arguments = item["arguments"], arguments != .null { lines.append("  " + arguments.canonicalJSON) }
        // What the agent sent (arguments, tool name) and what people wrote is shown with its invisible characters
        // escaped, so that a reviewer sees exactly what is asked.
        return lines.map { $0.escapingInvisibles() }.joined(separator: "\n")
    }

    static func relative(_ timestamp: String?, now: Date) -> String {
        guard let timestamp, let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(timestamp) else { return "-" }
        let seconds = Int(date.timeIntervalSince(now).rounded())
        let magnitude = abs(seconds)
        let text =
            magnitude < 120
            ? "\(magnitude)s" : magnitude < 7200 ? "\(magnitude / 60)m" : magnitude < 172_800 ? "\(magnitude / 3600)h" : "\(magnitude / 86400)d"
        return seconds > 0 ? "in " + text : text + " ago"
    }
}
