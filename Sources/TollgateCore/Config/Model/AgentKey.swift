import Crypto
import Foundation

/// Agent API keys: `tg_` and 43 characters of base64url (32 random bytes). The configuration keeps only
/// ``hash(_:)`` of a key, so a leaked configuration file does not leak the keys.
///
/// ```swift
/// let key = AgentKey.generate()          // give this to the agent, once
/// let keyHash = AgentKey.hash(key)       // put this in the configuration: key_hash: sha256:...
/// AgentKey.matches(key, hash: keyHash)   // true
/// ```
public enum AgentKey {
    static let prefix = "tg_"
    static let hashPrefix = "sha256:"

    /// A new key from the system's secure random number generator.
    public static func generate() -> String {
        prefix + base64URL(SecureRandom.bytes(32))
    }

    /// `sha256:` and the lowercase hex SHA-256 of the key's UTF-8 bytes.
    public static func hash(_ key: String) -> String {
        hashPrefix + hex(digest(of: key))
    }

    /// Whether `key` is the key whose hash is `hash`, comparing the digests in constant time. A malformed hash matches
    /// no key.
    public static func matches(_ key: String, hash: String) -> Bool {
        guard let expected = digest(fromHash: hash) else { return false }
        return constantTimeEqual(digest(of: key), expected)
    }

    /// The SHA-256 of the key's UTF-8 bytes.
    static func digest(of key: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(key.utf8)))
    }

    /// The 32 digest bytes of a well-formed hash (`sha256:` and 64 lowercase hex digits), or `nil`.
    static func digest(fromHash hash: String) -> [UInt8]? {
        let utf8 = Array(hash.utf8)
        let prefixBytes = Array(hashPrefix.utf8)
        guard utf8.count == prefixBytes.count + 64, utf8.starts(with: prefixBytes) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = prefixBytes.count
        while index < utf8.count {
            guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    /// Whether `hash` is `sha256:` and 64 lowercase hex digits.
    static func isWellFormedHash(_ hash: String) -> Bool {
        digest(fromHash: hash) != nil
    }

    /// Equality that takes the same time wherever the first difference is.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices {
            difference |= lhs[index] ^ rhs[index]
        }
        return difference == 0
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        Hex.lowercase(bytes)
    }

    /// Base64url without padding (RFC 4648 section 5).
    static func base64URL(_ bytes: [UInt8]) -> String {
        String(
            Base64.encode(bytes).compactMap { character -> Character? in
                switch character {
                case "+": "-"
                case "/": "_"
                case "=": nil
                default: character
                }
            })
    }
}
