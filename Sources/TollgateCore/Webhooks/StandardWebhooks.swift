import Foundation

/// Signing and verifying webhook deliveries as the Standard Webhooks 1.0 specification says (symmetric `v1`
/// signatures, https://www.standardwebhooks.com), so any receiver can check Tollgate's deliveries with an official
/// Standard Webhooks library.
///
/// A delivery carries three headers: `webhook-id` (the message id, the same on every retry of the message),
/// `webhook-timestamp` (the attempt's Unix time in seconds) and `webhook-signature`: `v1,` and the base64
/// HMAC-SHA256 of `"<id>.<timestamp>.<body>"`, once per active secret, separated by spaces, so that an endpoint's
/// secret can be rotated with no gap (sign with the new and the old secret until the receiver has the new one).
///
/// ```swift
/// let headers = StandardWebhooks.headers(
///     id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", timestamp: StandardWebhooks.currentTimestamp(), body: body,
///     secrets: [newSecret, oldSecret])
/// for (name, value) in headers.fields { request.headers.add(name: name, value: value) }
///
/// // On the receiving side:
/// try StandardWebhooks.verify(
///     id: received["webhook-id"], timestamp: received["webhook-timestamp"],
///     signatureHeader: received["webhook-signature"], body: receivedBody, secrets: [secret])
/// ```
///
/// The id must not contain `.` (the specification asks senders to keep it out of what is signed) and should be unique
/// per message, as receivers use it to drop duplicates.
public enum StandardWebhooks {
    public static let idHeaderName = "webhook-id"
    public static let timestampHeaderName = "webhook-timestamp"
    public static let signatureHeaderName = "webhook-signature"
    /// How far a delivery's timestamp may be from the receiver's clock, either way, before it is refused: 5 minutes, as
    /// in the official libraries.
    public static let defaultTolerance: Duration = .seconds(300)

    /// The signature version of HMAC-SHA256 signatures.
    static let version = "v1"
    /// The bytes of an HMAC-SHA256.
    static let macByteCount = 32

    /// The three headers of one delivery attempt.
    public struct Headers: Sendable, Hashable {
        /// `webhook-id`: the message id.
        public let id: String
        /// `webhook-timestamp`: the attempt's Unix time in seconds.
        public let timestamp: Int64
        /// `webhook-signature`: one `v1,...` entry per secret, separated by single spaces.
        public let signature: String

        /// Name and value of each header, in the order id, timestamp, signature.
        public var fields: [(name: String, value: String)] {
            [
                (StandardWebhooks.idHeaderName, id), (StandardWebhooks.timestampHeaderName, String(timestamp)),
                (StandardWebhooks.signatureHeaderName, signature),
            ]
        }
    }

    /// The headers for one delivery attempt of `body`, signed with every secret in `secrets` (in that order). With no
    /// secret the signature header is empty and no receiver accepts the delivery.
    public static func headers(id: String, timestamp: Int64, body: [UInt8], secrets: [WebhookSecret]) -> Headers {
        Headers(id: id, timestamp: timestamp, signature: signatureHeader(id: id, timestamp: timestamp, body: body, secrets: secrets))
    }

    /// The value of `webhook-signature`: one ``WebhookSecret/signature(id:timestamp:body:)`` per secret, separated by
    /// single spaces.
    public static func signatureHeader(id: String, timestamp: Int64, body: [UInt8], secrets: [WebhookSecret]) -> String {
        secrets.map { $0.signature(id: id, timestamp: timestamp, body: body) }.joined(separator: " ")
    }

    /// The current Unix time in whole seconds (rounded down): the timestamp of an attempt made now.
    public static func currentTimestamp() -> Int64 {
        Int64(Date().timeIntervalSince1970.rounded(.down))
    }

    /// Checks a received delivery: the three header values as received (`nil` when absent), the raw body bytes, and the
    /// secrets any of which may have signed it (during a rotation, the new and the old). Returns the secret that matched.
    ///
    /// In order: each header must be present and not empty; `timestamp` must be digits only, and within `tolerance`
    /// (whole seconds) of `now` either way; then some `v1` entry of `signatureHeader` must be the HMAC-SHA256 of
    /// `"<id>.<timestamp>.<body>"` under one of `secrets`, compared in constant time. Entries of other versions (`v1a`,
    /// `v2`) are skipped, and so are malformed entries when another entry matches; when none matches, the first
    /// malformed entry is the error, if there is one.
    @discardableResult
    public static func verify(
        id: String?,
        timestamp: String?,
        signatureHeader: String?,
        body: [UInt8],
        secrets: [WebhookSecret],
        now: Int64 = StandardWebhooks.currentTimestamp(),
        tolerance: Duration = StandardWebhooks.defaultTolerance
    ) throws(WebhookVerificationError) -> WebhookSecret {
        guard let id, !id.isEmpty else { throw .missingHeader(idHeaderName) }
        guard let timestamp, !timestamp.isEmpty else { throw .missingHeader(timestampHeaderName) }
        let entries = (signatureHeader ?? "").split(separator: " ")
        guard !entries.isEmpty else { throw .missingHeader(signatureHeaderName) }

        guard let seconds = parseTimestamp(timestamp) else { throw .timestampNotANumber(quoted(timestamp)) }
        let allowed = max(0, tolerance.components.seconds)
        let (age, overflow) = now.subtractingReportingOverflow(seconds)
        if overflow || age > allowed || age < -allowed {
            if seconds <= now {
                throw .timestampTooOld(timestamp: seconds, now: now, tolerance: allowed)
            } else {
                throw .timestampTooNew(timestamp: seconds, now: now, tolerance: allowed)
            }
        }

        var candidates: [[UInt8]] = []
        var firstMalformed: WebhookVerificationError?
        for entry in entries {
            switch parseEntry(entry) {
            case .v1(let mac):
                candidates.append(mac)
            case .otherVersion:
                continue
            case .malformed(let problem):
                if firstMalformed == nil { firstMalformed = .malformedSignature(entry: quoted(entry), problem: problem) }
            }
        }
        guard !secrets.isEmpty else { throw .noMatchingSignature(v1Signatures: candidates.count, secrets: 0) }
        for secret in secrets {
            // The timestamp as it was sent: the digits that were signed.
            let expected = secret.mac(id: id, timestamp: timestamp, body: body)
            for candidate in candidates where AgentKey.constantTimeEqual(expected, candidate) {
                return secret
            }
        }
        if let firstMalformed { throw firstMalformed }
        throw .noMatchingSignature(v1Signatures: candidates.count, secrets: secrets.count)
    }

    /// A `webhook-signature` entry, read.
    enum Entry: Equatable {
        case v1([UInt8])
        case otherVersion
        case malformed(WebhookVerificationError.SignatureProblem)
    }

    /// Reads one space-free entry of `webhook-signature`: `version,signature`.
    static func parseEntry(_ entry: Substring) -> Entry {
        guard let comma = entry.firstIndex(of: ",") else { return .malformed(.noComma) }
        let version = entry[..<comma]
        guard !version.isEmpty else { return .malformed(.emptyVersion) }
        guard version == Self.version else { return .otherVersion }
        guard let mac = Base64.decode(entry[entry.index(after: comma)...]) else { return .malformed(.notBase64) }
        guard mac.count == macByteCount else { return .malformed(.wrongLength(bytes: mac.count)) }
        return .v1(mac)
    }

    /// The Unix time in a `webhook-timestamp` value: ASCII digits only (no sign, no fraction, no spaces), fitting in
    /// an `Int64`.
    static func parseTimestamp(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }

    /// A received value for an error message: cut to 80 characters, quoted, with quotes and control characters escaped.
    static func quoted<Text: StringProtocol>(_ value: Text) -> String {
        let limit = 80
        if value.count <= limit { return String(reflecting: String(value)) }
        return String(reflecting: String(value.prefix(limit))) + "…"
    }
}
