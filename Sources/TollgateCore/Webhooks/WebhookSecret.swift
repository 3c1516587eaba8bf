import Crypto
import Foundation

/// A Standard Webhooks signing secret: `whsec_` and the base64 of 24 to 64 key bytes. Tollgate signs each delivery
/// with HMAC-SHA256 under every active secret of an endpoint; the receiver keeps the same text and checks the signature
/// with any Standard Webhooks library (or ``StandardWebhooks/verify(id:timestamp:signatureHeader:body:secrets:now:tolerance:)``).
///
/// ```swift
/// let secret = WebhookSecret.generate()               // give secret.text to the receiver, once
/// let same = try WebhookSecret(parsing: secret.text)  // same == secret
/// secret.signature(id: "msg_1", timestamp: 1_674_087_231, body: Array(#"{"ok":true}"#.utf8))   // "v1,..."
/// ```
///
/// Printing a secret (`description`, string interpolation, `dump`) shows `whsec_…` and nothing of the key: only
/// ``text`` gives the whole secret.
public struct WebhookSecret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    static let prefix = "whsec_"
    /// The fewest key bytes a secret may have: 24 (192 bits), the specification's minimum.
    public static let minimumKeyBytes = 24
    /// The most key bytes a secret may have: 64 (512 bits).
    public static let maximumKeyBytes = 64

    /// The HMAC key.
    let key: [UInt8]

    /// The secret written as `text`: `whsec_` and standard base64 with `=` padding, nothing around it (no spaces, no
    /// trailing newline).
    public init(parsing text: String) throws(WebhookSecretError) {
        guard text.hasPrefix(Self.prefix) else { throw .missingPrefix }
        guard let key = Base64.decode(text.dropFirst(Self.prefix.count)) else { throw .notBase64 }
        try self.init(key: key)
    }

    /// A secret with these key bytes.
    init(key: [UInt8]) throws(WebhookSecretError) {
        guard key.count >= Self.minimumKeyBytes else { throw .tooShort(keyBytes: key.count) }
        guard key.count <= Self.maximumKeyBytes else { throw .tooLong(keyBytes: key.count) }
        self.key = key
    }

    /// A new secret of 32 bytes from the system's secure random number generator.
    public static func generate() -> WebhookSecret {
        // 32 bytes is within the bounds, so this cannot throw.
        (try? WebhookSecret(key: SecureRandom.bytes(32)))!
    }

    /// The whole secret, `whsec_` and the base64 of the key: what the receiver is given.
    public var text: String {
        Self.prefix + Base64.encode(key)
    }

    /// The `webhook-signature` entry for one delivery attempt under this secret: `v1,` and the base64 of
    /// HMAC-SHA256(key, `"<id>.<timestamp>.<body>"`), `timestamp` in decimal Unix seconds.
    public func signature(id: String, timestamp: Int64, body: [UInt8]) -> String {
        StandardWebhooks.version + "," + Base64.encode(mac(id: id, timestamp: String(timestamp), body: body))
    }

    /// HMAC-SHA256 of `"<id>.<timestamp>.<body>"`, with the timestamp as the text that is (or was) sent.
    func mac(id: String, timestamp: String, body: [UInt8]) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: key))
        hmac.update(data: Array(id.utf8))
        hmac.update(data: Array(".\(timestamp).".utf8))
        hmac.update(data: body)
        return Array(hmac.finalize())
    }

    public var description: String { Self.prefix + "…" }

    public var debugDescription: String { "WebhookSecret(\(Self.prefix)…)" }

    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
