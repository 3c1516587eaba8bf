import HTTPTypes
import Hummingbird
import NIOCore

/// A form POSTed to the reviewer page (`application/x-www-form-urlencoded`), read strictly: at most
/// ``maxBodyBytes``, each name once, only the names the form has, well-formed percent-escapes and UTF-8, no NUL.
/// Anything else is refused with a ``ReviewerPageProblem`` that says what was wrong.
///
/// ```swift
/// let form = try await ReviewerPageForm.read(request, allowed: ["csrf", "comment"])
/// form["comment"]   // "looks right"
/// ```
struct ReviewerPageForm: Sendable {
    /// The most bytes a form body may have (the same as the `/v1` API's bodies).
    static let maxBodyBytes = 16 * 1024

    private(set) var fields: [String: String] = [:]

    subscript(_ name: String) -> String? { fields[name] }

    /// Reads and parses the request's body.
    static func read(_ request: Request, allowed: Set<String>) async throws(ReviewerPageProblem) -> ReviewerPageForm {
        if let length = request.headers[.contentLength], let bytes = Int(length), bytes > maxBodyBytes {
            throw tooLarge
        }
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        guard contentType.hasPrefix("application/x-www-form-urlencoded") else {
            throw ReviewerPageProblem(
                .unsupportedMediaType, "This form was sent in a format the page does not read. Send it from the page itself.")
        }
        var buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        } catch {
            throw ReviewerPageProblem(.badRequest, "The form could not be read to its end.")
        }
        return try parse(buffer.readBytes(length: buffer.readableBytes) ?? [], allowed: allowed)
    }

    static var tooLarge: ReviewerPageProblem {
        ReviewerPageProblem(
            .contentTooLarge, "The form is too large: a form may have at most \(maxBodyBytes / 1024) KiB, and a comment or reason 2000 characters.")
    }

    /// Parses URL-encoded `bytes`.
    static func parse(_ bytes: [UInt8], allowed: Set<String>) throws(ReviewerPageProblem) -> ReviewerPageForm {
        var form = ReviewerPageForm()
        guard !bytes.isEmpty else { return form }
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
            if pair.isEmpty { continue }
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : []) else {
                throw ReviewerPageProblem(.badRequest, "The form is not well-formed (a bad %-escape or text that is not UTF-8).")
            }
            guard allowed.contains(name) else {
                throw ReviewerPageProblem(.badRequest, "The form has a field this page does not know (\(name.prefix(40))).")
            }
            guard form.fields[name] == nil else {
                throw ReviewerPageProblem(.badRequest, "The form has the field \(name) more than once.")
            }
            guard !value.unicodeScalars.contains("\0") else {
                throw ReviewerPageProblem(.badRequest, "The field \(name) contains a NUL character.")
            }
            form.fields[name] = value
        }
        return form
    }

    /// `+` as a space and `%XX` as a byte, the result read as UTF-8; `nil` for a bad escape or bytes that are not UTF-8.
    static func decode(_ bytes: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2])
                else { return nil }
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Why a reviewer page request was refused: the HTTP status and a message in words for `<p role="alert" id="error">`,
/// and for a decision refused by the approval rules, the `/v1` API's code.
struct ReviewerPageProblem: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var code: String?

    init(_ status: HTTPResponse.Status, _ message: String, code: String? = nil) {
        self.status = status
        self.message = message
        self.code = code
    }

    /// The text shown: the message, and the API's code in parentheses before its full stop when there is one
    /// ("agent-a made this call and cannot approve or deny it (self_approval).").
    var text: String {
        guard let code else { return message }
        let sentence = message.hasSuffix(".") ? String(message.dropLast()) : message
        return "\(sentence) (\(code))."
    }
}
