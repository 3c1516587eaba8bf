import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import TollgateCore
import TollgatePostgres
import TollgateServer

/// `tollgate webhooks`: the signed notifications that tell reviewers about approval requests.
struct WebhooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks",
        abstract: "Webhook secrets, deliveries, test sends, and checking a received delivery's signature.",
        subcommands: [WebhooksSecretCommand.self, WebhooksVerifyCommand.self, WebhooksDeliveriesCommand.self, WebhooksTestCommand.self]
    )
}

struct WebhooksSecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret", abstract: "Print a fresh signing secret (whsec_ and 32 random bytes in base64) for a webhook's `secrets`.")

    func run() {
        print(WebhookSecret.generate().text)
    }
}

struct WebhooksVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a captured delivery's Standard Webhooks signature, as a receiver must.",
        discussion: """
            Give the headers (a file of `Name: value` lines, as `curl -D` or a raw request writes them, or --header \
            each) and the exact body bytes. Exits 0 when a signature matches one of the secrets and the timestamp is \
            within the tolerance, 1 otherwise, saying why.

            Examples:
              tollgate webhooks verify --secret "$SECRET" --headers delivery.headers --body delivery.json
              tollgate webhooks verify --secret "$SECRET" --header 'webhook-id: msg_...' --header 'webhook-timestamp: 1764662400' \\
                  --header 'webhook-signature: v1,...' --body - --tolerance 0 < body.json
            """)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A secret (whsec_...) that may have signed it; repeat during a rotation (default: $TOLLGATE_WEBHOOK_SECRET).", valueName: "secret"))
    var secret: [String] = []

    @Option(name: .long, help: ArgumentHelp("A file of `Name: value` header lines.", valueName: "file"))
    var headers: String?

    @Option(name: .long, help: ArgumentHelp("One header, `Name: value` (repeatable).", valueName: "header"))
    var header: [String] = []

    @Option(name: .long, help: ArgumentHelp("The body as received: a file, or - for standard input.", valueName: "file"))
    var body: String

    @Option(name: .long, help: "Seconds the timestamp may be from now, either way (default 300; 0 skips the check, for old captures).")
    var tolerance: Int = 300

    func run() throws {
        var secretTexts = secret
        if secretTexts.isEmpty, let environment = ProcessInfo.processInfo.environment["TOLLGATE_WEBHOOK_SECRET"] { secretTexts = [environment] }
        guard !secretTexts.isEmpty else { throw ValidationError("give the secret with --secret (or TOLLGATE_WEBHOOK_SECRET)") }
        var secrets: [WebhookSecret] = []
        for text in secretTexts {
            do {
                secrets.append(try WebhookSecret(parsing: text))
            } catch {
                throw ValidationError("--secret: \(error)")
            }
        }
        var lines = header
        if let headers {
            guard let data = FileManager.default.contents(atPath: headers), data.count <= 1 << 20 else {
                throw ValidationError("--headers \(headers) cannot be read (or is larger than 1 MiB)")
            }
            lines += String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init)
        }
        var fields: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let bytes: [UInt8]
        if body == "-" {
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: body) else { throw ValidationError("--body \(body) cannot be read") }
            bytes = Array(data)
        }
        do {
            let timestamp = fields[StandardWebhooks.timestampHeaderName]
            let now = tolerance == 0 ? (timestamp.flatMap { Int64($0) } ?? 0) : StandardWebhooks.currentTimestamp()
            let matched = try StandardWebhooks.verify(
                id: fields[StandardWebhooks.idHeaderName], timestamp: timestamp, signatureHeader: fields[StandardWebhooks.signatureHeaderName],
                body: bytes, secrets: secrets, now: now, tolerance: .seconds(max(tolerance, 0)))
            let which = secrets.firstIndex(of: matched).map { $0 + 1 } ?? 1
            print("OK: signed by secret \(which) of \(secrets.count); webhook-id \(fields[StandardWebhooks.idHeaderName] ?? "")")
        } catch {
            FileHandle.standardError.write(Data("NOT VERIFIED: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct WebhooksDeliveriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliveries", abstract: "Webhook deliveries, newest first, with their attempts.",
        discussion: """
            Examples:
              tollgate webhooks deliveries
              tollgate webhooks deliveries --endpoint reviewers --status failed --format json
            """)

    @Option(name: .long, help: "Only this endpoint's deliveries.")
    var endpoint: String?

    @Option(name: .long, help: "pending, delivered or failed.")
    var status: String?

    @Option(name: .long, help: "At most this many (1 to 1000).")
    var limit = 50

    @Option(name: .long, help: "table or json.")
    var format: ApprovalsOutputFormat = .table

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let status, !["pending", "delivered", "failed"].contains(status) {
            throw ValidationError("--status must be pending, delivered or failed")
        }
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
    }

    func run() async throws {
        let (endpoint, status, limit) = (endpoint, status, limit)
        let rows = try await database.run(logger: logging.makeLogger("tollgate")) { client, _ in
            try await WebhookOutboxStore(client: client).list(endpoint: endpoint, status: status, limit: limit)
        }
        var items: [JSONValue] = []
        for row in rows {
            items.append([
                "id": .string(row.id), "endpoint": .string(row.endpoint), "event": .string(row.event),
                "approval_id": row.approvalID.map { .string($0) } ?? .null, "status": .string(row.status), "attempts": .number(Double(row.attempts)),
                "created_at": .string(row.createdAt), "next_attempt_at": .string(row.nextAttemptAt),
                "last_status": row.lastStatus.map { .number(Double($0)) } ?? .null, "last_error": row.lastError.map { .string($0) } ?? .null,
                "attempt_log": try JSONValue(parsing: row.attemptLog),
            ])
        }
        switch format {
        case .json: print(JSONValue.array(items).canonicalJSON)
        case .table:
            var table = [["ID", "ENDPOINT", "EVENT", "STATUS", "ATTEMPTS", "LAST", "CREATED", "NEXT ATTEMPT"]]
            for item in items {
                let last =
                    item["last_status"]?.doubleValue.map { "HTTP \(Int($0))" } ?? item["last_error"]?.stringValue.map { String($0.prefix(40)) } ?? "-"
                table.append([
                    item["id"]?.stringValue ?? "", item["endpoint"]?.stringValue ?? "", item["event"]?.stringValue ?? "",
                    item["status"]?.stringValue ?? "",
                    String(Int(item["attempts"]?.doubleValue ?? 0)), last, item["created_at"]?.stringValue ?? "",
                    item["status"]?.stringValue == "pending" ? item["next_attempt_at"]?.stringValue ?? "" : "-",
                ])
            }
            print(items.isEmpty ? "no deliveries" : TextTable.render(table))
        }
    }
}

struct WebhooksTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test", abstract: "Send one signed sample delivery (an approval request) to an endpoint from the configuration.",
        discussion: """
            Sends at once, outside the outbox, with the endpoint's format, secrets and time-out, and prints what the \
            endpoint answered. Exits 0 on a 2xx answer, 1 otherwise.

            Example:
              tollgate webhooks test reviewers --config tollgate.yaml
            """)

    @Argument(help: "The webhook's name in the configuration.")
    var name: String

    @OptionGroup var configuration: ConfigOptions

    func run() async throws {
        let config = try configuration.load() ?? GatewayConfig()
        guard let endpoint = config.webhooks.first(where: { $0.name == name }) else {
            let known = config.webhooks.map(\.name)
            throw ValidationError(
                "no webhook named `\(name)`" + (known.isEmpty ? "; the configuration has none" : "; there are \(known.joined(separator: ", "))"))
        }
        let sample = WebhookSample.body(for: endpoint, baseURL: config.publicURL ?? "http://\(config.listen)")
        let id = "msg_test_" + UUID().uuidString.prefix(8).lowercased()
        let bytes = Array(sample.utf8)
        let headers = StandardWebhooks.headers(id: id, timestamp: StandardWebhooks.currentTimestamp(), body: bytes, secrets: endpoint.secrets)
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        for (field, value) in headers.fields { request.headers.add(name: field, value: value) }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "tollgate-webhooks/1")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        let started = ContinuousClock.now
        do {
            let response = try await http.execute(request, timeout: .seconds(Int64(endpoint.timeout)))
            let answer = String(buffer: try await response.body.collect(upTo: 64 * 1024))
            let elapsed = started.duration(to: .now)
            try? await http.shutdown()
            print(
                "\(endpoint.name): HTTP \(response.status.code) in \(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000) ms; webhook-id \(id)"
            )
            if !answer.isEmpty { print(answer.prefix(500)) }
            if !(200..<300).contains(Int(response.status.code)) { throw ExitCode(1) }
        } catch let error as ExitCode {
            throw error
        } catch {
            try? await http.shutdown()
            FileHandle.standardError.write(Data("\(endpoint.name): not delivered: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
