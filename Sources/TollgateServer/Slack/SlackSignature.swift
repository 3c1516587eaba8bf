import Crypto
import Foundation
import TollgateCore

/// Slack's request signature, version 0: `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256, under the app's signing
/// secret, of `v0:<X-Slack-Request-Timestamp>:<the raw body>`; the timestamp (Unix seconds) must be within
/// ``tolerance`` of the gateway's clock, so a captured request cannot be sent again later.
///
/// ```swift
/// switch SlackSignature.check(body: bytes, timestamp: headerTimestamp, signature: headerSignature, secret: secret, now: Date()) {
/// case .success: ...           // Slack sent it
/// case .failure(let refusal): ...  // 401, and log refusal.description
/// }
/// ```
enum SlackSignature {
    /// How far the request's timestamp may be from the gateway's clock, either way: 5 minutes, as Slack recommends.
    static let tolerance: TimeInterval = 300

    /// Why a request is not taken as Slack's.
    enum Refusal: Error, Equatable, CustomStringConvertible {
        case missingTimestamp
        case missingSignature
        case malformedTimestamp
        /// The timestamp is `skew` seconds from the gateway's clock (negative: in the past).
        case outsideWindow(skew: Int64)
        case malformedSignature
        case wrongSignature

        var description: String {
            switch self {
            case .missingTimestamp: "the request has no X-Slack-Request-Timestamp header"
            case .missingSignature: "the request has no X-Slack-Signature header"
            case .malformedTimestamp: "X-Slack-Request-Timestamp is not a number of seconds"
            case .outsideWindow(let skew):
                "X-Slack-Request-Timestamp is \(abs(skew)) s in the \(skew < 0 ? "past" : "future"); at most \(Int(tolerance)) s either way is accepted"
            case .malformedSignature: "X-Slack-Signature is not v0= and 64 hex digits"
            case .wrongSignature: "X-Slack-Signature does not match the body under the signing secret"
            }
        }
    }

    /// Checks a request's headers against its raw body. The comparison of the MACs takes the same time wherever they
    /// differ.
    static func check(body: [UInt8], timestamp: String?, signature: String?, secret: String, now: Date) -> Result<Void, Refusal> {
        guard let timestamp else { return .failure(.missingTimestamp) }
        guard let signature else { return .failure(.missingSignature) }
        guard (1...12).contains(timestamp.utf8.count), timestamp.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let seconds = Int64(timestamp)
        else { return .failure(.malformedTimestamp) }
        let skew = seconds - Int64(now.timeIntervalSince1970.rounded(.down))
        guard abs(skew) <= Int64(tolerance) else { return .failure(.outsideWindow(skew: skew)) }
        guard signature.utf8.count == 67, signature.hasPrefix("v0="), let mac = Hex.bytes(String(signature.dropFirst(3))), mac.count == 32
        else { return .failure(.malformedSignature) }
        var message = Array("v0:\(timestamp):".utf8)
        message.append(contentsOf: body)
        let key = SymmetricKey(data: Array(secret.utf8))
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: message, using: key) else { return .failure(.wrongSignature) }
        return .success(())
    }

    /// The `X-Slack-Signature` of `body` sent at `timestamp`, as Slack computes it.
    static func signature(body: [UInt8], timestamp: String, secret: String) -> String {
        var message = Array("v0:\(timestamp):".utf8)
        message.append(contentsOf: body)
        return "v0=" + Hex.lowercase(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8))))
    }
}
