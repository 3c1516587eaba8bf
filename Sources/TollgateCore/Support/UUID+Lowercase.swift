import Foundation

extension UUID {
    /// The id as the gateway writes it everywhere (events, streams, logs, API answers, webhooks, `_meta`): lowercase,
    /// `9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d`. Foundation's `uuidString` is uppercase; reading accepts either.
    ///
    /// Written straight from the bytes: one allocation, where `uuidString.lowercased()` takes two (this runs for every
    /// tool call).
    public var lowercasedString: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                let digits: StaticString = "0123456789abcdef"
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    text[at] = digits.utf8Start[Int(byte >> 4)]
                    text[at + 1] = digits.utf8Start[Int(byte & 0x0F)]
                    at += 2
                }
                return at
            }
        }
    }
}
