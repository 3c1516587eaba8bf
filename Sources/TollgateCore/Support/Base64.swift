/// Base64 with the standard alphabet and `=` padding (RFC 4648 section 4), the form Standard Webhooks uses for secrets
/// and signatures. Decoding is strict: it takes exactly what ``encode(_:)`` produces and nothing else (no whitespace, no
/// missing padding, no base64url characters, no stray bits in the last character), so one byte string has one text.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let pad = UInt8(ascii: "=")

    static func encode(_ bytes: [UInt8]) -> String {
        var result: [UInt8] = []
        result.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var chunk = UInt32(bytes[index]) << 16
            if count > 1 { chunk |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { chunk |= UInt32(bytes[index + 2]) }
            for position in 0..<4 {
                if position <= count {
                    result.append(alphabet[Int((chunk >> (18 - 6 * UInt32(position))) & 0x3F)])
                } else {
                    result.append(pad)
                }
            }
            index += 3
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The bytes of well-formed base64 text, or `nil`.
    static func decode<Text: StringProtocol>(_ text: Text) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 4 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 4 * 3)
        var index = 0
        while index < utf8.count {
            var padding = 0
            if index + 4 == utf8.count, utf8[index + 3] == pad {
                padding = utf8[index + 2] == pad ? 2 : 1
            }
            var chunk: UInt32 = 0
            for position in 0..<(4 - padding) {
                guard let value = sextet(utf8[index + position]) else { return nil }
                chunk |= UInt32(value) << (18 - 6 * UInt32(position))
            }
            // The bits of the last character that no byte uses must be zero.
            switch padding {
            case 1: guard chunk & 0xFF == 0 else { return nil }
            case 2: guard chunk & 0xFFFF == 0 else { return nil }
            default: break
            }
            bytes.append(UInt8(truncatingIfNeeded: chunk >> 16))
            if padding < 2 { bytes.append(UInt8(truncatingIfNeeded: chunk >> 8)) }
            if padding < 1 { bytes.append(UInt8(truncatingIfNeeded: chunk)) }
            index += 4
        }
        return bytes
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}
