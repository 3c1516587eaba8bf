/// Why a webhook delivery failed Standard Webhooks verification
/// (``StandardWebhooks/verify(id:timestamp:signatureHeader:body:secrets:now:tolerance:)``). Each message says what
/// was wrong and what to check; values taken from the request are quoted, escaped and cut to 80 characters.
public enum WebhookVerificationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The header `name` (`webhook-id`, `webhook-timestamp` or `webhook-signature`) is absent, empty, or (for
    /// `webhook-signature`) only spaces.
    case missingHeader(String)
    /// `webhook-timestamp` is not a whole, non-negative number of seconds (the value, cut short).
    case timestampNotANumber(String)
    /// The delivery's timestamp is more than `tolerance` seconds before `now`.
    case timestampTooOld(timestamp: Int64, now: Int64, tolerance: Int64)
    /// The delivery's timestamp is more than `tolerance` seconds after `now`.
    case timestampTooNew(timestamp: Int64, now: Int64, tolerance: Int64)
    /// An entry of `webhook-signature` (cut short) is not `version,signature`, or its `v1` signature is not the base64
    /// of 32 bytes; reported only when no other entry matched.
    case malformedSignature(entry: String, problem: SignatureProblem)
    /// None of the header's `v1Signatures` valid `v1` signatures is the HMAC of this id, timestamp and body under any of
    /// the `secrets` secrets.
    case noMatchingSignature(v1Signatures: Int, secrets: Int)

    /// What is wrong with one entry of `webhook-signature`.
    public enum SignatureProblem: Sendable, Hashable {
        /// The entry has no comma between version and signature.
        case noComma
        /// Nothing comes before the comma.
        case emptyVersion
        /// The `v1` signature is not standard base64 with `=` padding.
        case notBase64
        /// The `v1` signature decodes to this many bytes instead of 32.
        case wrongLength(bytes: Int)
    }

    public var description: String {
        switch self {
        case .missingHeader(let name):
            return "the request has no \(name) header: a Standard Webhooks delivery carries \(StandardWebhooks.idHeaderName),"
                + " \(StandardWebhooks.timestampHeaderName) and \(StandardWebhooks.signatureHeaderName) (check that no proxy"
                + " in between drops them)"
        case .timestampNotANumber(let value):
            return "\(StandardWebhooks.timestampHeaderName) \(value) is not a whole number of seconds since 1970-01-01 UTC"
                + " (Unix time, digits only, like 1674087231)"
        case .timestampTooOld(let timestamp, let now, let tolerance):
            return "\(StandardWebhooks.timestampHeaderName) \(timestamp) is \(Self.gap(timestamp, now)) s behind this"
                + " receiver's clock (\(now)) and at most \(tolerance) s are allowed: a replayed or long-delayed delivery,"
                + " or a clock that is wrong on one side (check NTP on the sender and on the receiver)"
        case .timestampTooNew(let timestamp, let now, let tolerance):
            return "\(StandardWebhooks.timestampHeaderName) \(timestamp) is \(Self.gap(timestamp, now)) s ahead of this"
                + " receiver's clock (\(now)) and at most \(tolerance) s are allowed: the sender's or the receiver's clock"
                + " is wrong (check NTP on both)"
        case .malformedSignature(let entry, let problem):
            let what: String
            switch problem {
            case .noComma: what = "it has no comma between version and signature"
            case .emptyVersion: what = "its version, before the comma, is empty"
            case .notBase64: what = "its v1 signature is not base64 (standard alphabet, = padding)"
            case .wrongLength(let bytes): what = "its v1 signature is \(bytes) bytes and an HMAC-SHA256 is 32"
            }
            return "the \(StandardWebhooks.signatureHeaderName) entry \(entry) is malformed: \(what); each space-separated"
                + " entry is a version, a comma and a signature, like v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
        case .noMatchingSignature(let v1Signatures, let secrets):
            if secrets == 0 {
                return "there is no secret to verify \(StandardWebhooks.signatureHeaderName) with: configure the endpoint's"
                    + " whsec_ secret"
            }
            if v1Signatures == 0 {
                return "\(StandardWebhooks.signatureHeaderName) has no v1 (HMAC-SHA256) signature, only other versions"
                    + " (such as v1a), which this receiver does not check"
            }
            return "none of the \(v1Signatures) v1 signature(s) in \(StandardWebhooks.signatureHeaderName) matches under"
                + " the \(secrets) secret(s): the secret is not the sender's (or was rotated out), or the body, id or"
                + " timestamp changed on the way; verify the raw body bytes as received, not JSON parsed and serialized"
                + " again"
        }
    }

    /// How far apart two Unix times are, without overflow.
    private static func gap(_ lhs: Int64, _ rhs: Int64) -> UInt64 {
        lhs > rhs ? UInt64(bitPattern: lhs &- rhs) : UInt64(bitPattern: rhs &- lhs)
    }
}
