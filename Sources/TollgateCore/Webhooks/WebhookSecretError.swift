/// Why a text is not a Standard Webhooks secret (``WebhookSecret/init(parsing:)``). The messages never quote the secret.
public enum WebhookSecretError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text does not start with `whsec_`.
    case missingPrefix
    /// What follows `whsec_` is not standard base64 with `=` padding.
    case notBase64
    /// The key has fewer than 24 bytes.
    case tooShort(keyBytes: Int)
    /// The key has more than 64 bytes.
    case tooLong(keyBytes: Int)

    public var description: String {
        switch self {
        case .missingPrefix:
            "a webhook secret starts with \"whsec_\" followed by the base64 of its key bytes (whsk_ and whpk_ keys, for"
                + " asymmetric v1a signatures, are not supported)"
        case .notBase64:
            "the part of the webhook secret after \"whsec_\" is not base64: use the standard alphabet (A-Z, a-z, 0-9, +"
                + " and /), = padding to a multiple of 4 characters, and no spaces or line breaks (a trailing newline"
                + " from a file is a common cause)"
        case .tooShort(let keyBytes):
            "the webhook secret's key is \(keyBytes) bytes and Standard Webhooks requires at least"
                + " \(WebhookSecret.minimumKeyBytes) (a generated secret has 32: 44 base64 characters after \"whsec_\")"
        case .tooLong(let keyBytes):
            "the webhook secret's key is \(keyBytes) bytes and at most \(WebhookSecret.maximumKeyBytes) are accepted"
                + " (a generated secret has 32: 44 base64 characters after \"whsec_\")"
        }
    }
}
