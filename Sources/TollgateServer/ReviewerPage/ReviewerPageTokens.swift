import Crypto
import TollgateCore

/// The reviewer page's secrets: session cookies, pre-session cookies and CSRF tokens are 32 random bytes from the
/// system's secure generator in base64url without padding (43 characters); the database keeps only the SHA-256 of a
/// session cookie.
enum ReviewerPageTokens {
    static let length = 43

    /// A fresh token.
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for _ in 0..<4 { withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) } }
        var text = ""
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".unicodeScalars)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var chunk = UInt32(bytes[index]) << 16
            if count > 1 { chunk |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { chunk |= UInt32(bytes[index + 2]) }
            for position in 0...count { text.unicodeScalars.append(alphabet[Int((chunk >> (18 - 6 * UInt32(position))) & 0x3F)]) }
            index += 3
        }
        return text
    }

    /// Whether `text` has the shape of a token (43 base64url characters): anything else is not looked up.
    static func isWellFormed(_ text: Substring) -> Bool {
        text.utf8.count == length
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
    }

    /// The session's key in the database: the lowercase hex SHA-256 of the cookie's value.
    static func hash(_ token: Substring) -> String {
        Hex.lowercase(SHA256.hash(data: Array(token.utf8)))
    }

    /// Equality that takes the same time wherever the first difference is (for CSRF tokens).
    static func equal(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
