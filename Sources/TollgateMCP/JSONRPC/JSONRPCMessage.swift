import TollgateCore

/// One JSON-RPC 2.0 message as received: its exact bytes, and the few envelope fields the relay reads.
///
/// A message that repeats a key in any of its objects is refused (`-32600`): peers disagree on which of the two
/// values counts, so the gateway could decide on one while the upstream acts on the other.
///
/// An `id` is a string or an integer the peers echo back exactly, at most ``JSONRPCID/maxBytes`` bytes as written
/// (see ``JSONRPCID``); any other is refused (`-32600`, the error's id `null`), in either direction.
///
/// The relay forwards ``bytes`` unchanged; it reads ``kind``, ``id`` and ``method`` to route the message, and
/// ``params`` only for the requests it decides on (`tools/call`).
///
/// ```swift
/// let message = try JSONRPCMessage(parsing: Array(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.utf8))
/// message.kind     // .request
/// message.method   // "tools/list"
/// ```
public struct JSONRPCMessage: Sendable {
    public enum Kind: String, Sendable {
        case request
        case notification
        case response
        case error
    }

    /// Why bytes are not one JSON-RPC message, with the JSON-RPC error code to answer with.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// `-32700` (not JSON) or `-32600` (JSON, but not a valid request).
        public var code: Int
        public var message: String
        /// The id, when the message had a readable one (for the error response).
        public var id: JSONRPCID?
        public var description: String { message }
    }

    public let bytes: [UInt8]
    public let kind: Kind
    public let id: JSONRPCID?
    public let method: String?
    let paramsRange: Range<Int>?
    let resultRange: Range<Int>?
    let errorRange: Range<Int>?
    let idRange: Range<Int>?

    /// Reads the envelope of one message. Batches (JSON arrays) are refused: MCP removed them in 2025-06-18.
    public init(parsing bytes: [UInt8], maxDepth: Int = 64) throws(ParseError) {
        let scanner = JSONScanner(bytes, maxDepth: maxDepth)
        let document: (root: Range<Int>, members: [JSONScanner.Member]?)
        do {
            document = try scanner.documentMembers()
        } catch {
            if error.repeatedKey != nil {
                // Valid JSON to RFC 8259, but read two ways: this gateway by one value, the peer perhaps by the other.
                throw ParseError(
                    code: -32600,
                    message: "Invalid Request: \(error.reason) (byte \(error.offset)); a message may not repeat a key in any object")
            }
            throw ParseError(code: -32700, message: "Parse error: the body is not valid JSON (\(error))")
        }
        guard let members = document.members else {
            let isArray = bytes[document.root.lowerBound] == UInt8(ascii: "[")
            throw ParseError(
                code: -32600,
                message: isArray
                    ? "Invalid Request: JSON-RPC batches are not supported; send one message per request"
                    : "Invalid Request: a JSON-RPC message must be a JSON object")
        }
        func value(_ key: String) -> Range<Int>? { members.first { $0.key == key }?.value }

        var id: JSONRPCID?
        if let range = value("id"), bytes[range] == Array("null".utf8)[...] {
            // Only an error response may have a null id (the request's id could not be read).
            guard value("method") == nil, value("error") != nil else {
                throw ParseError(code: -32600, message: "Invalid Request: `id` must be a string or an integer, not null")
            }
        } else if let range = value("id") {
            // Refused at once, whoever sent it: an id the peer would not echo back exactly (`1.5`, `1e2`, `2^53`, a
            // JavaScript peer's rounding) leaves the request unanswered until the gateway's time-out.
            guard range.count <= JSONRPCID.maxBytes else {
                throw ParseError(
                    code: -32600,
                    message: "Invalid Request: `id` may have at most \(JSONRPCID.maxBytes) bytes as written; this one has \(range.count)")
            }
            id = JSONRPCID(bytes: Array(bytes[range]), scanner: scanner, range: range)
            if id == nil {
                throw ParseError(
                    code: -32600,
                    message: "Invalid Request: `id` must be a string or an integer (digits only, no fraction or exponent, at most "
                        + "2^53-1 either side of 0), not \(String(decoding: bytes[range], as: UTF8.self).shortened(to: 32))")
            }
        }
        guard let version = value("jsonrpc"), scanner.string(at: version) == "2.0" else {
            throw ParseError(code: -32600, message: "Invalid Request: `jsonrpc` must be \"2.0\"", id: id)
        }
        self.bytes = bytes
        self.id = id
        self.idRange = id == nil ? nil : value("id")
        self.paramsRange = value("params")
        self.resultRange = value("result")
        self.errorRange = value("error")
        if let methodRange = value("method") {
            guard let method = scanner.string(at: methodRange), !method.isEmpty else {
                throw ParseError(code: -32600, message: "Invalid Request: `method` must be a non-empty string", id: id)
            }
            if let params = paramsRange, bytes[params.lowerBound] != UInt8(ascii: "{"), bytes[params.lowerBound] != UInt8(ascii: "[") {
                throw ParseError(code: -32600, message: "Invalid Request: `params` must be an object or an array", id: id)
            }
            self.method = method
            self.kind = id == nil ? .notification : .request
        } else if value("error") != nil {
            self.method = nil
            self.kind = .error
        } else if resultRange != nil {
            guard id != nil else { throw ParseError(code: -32600, message: "Invalid Request: a response needs an `id`") }
            self.method = nil
            self.kind = .response
        } else {
            throw ParseError(code: -32600, message: "Invalid Request: a message needs `method`, `result` or `error`", id: id)
        }
    }

    /// Where `params._meta.progressToken` is in ``bytes``.
    var progressTokenRange: Range<Int>? {
        guard let paramsRange else { return nil }
        let scanner = JSONScanner(bytes)
        guard let meta = try? scanner.member("_meta", of: paramsRange) else { return nil }
        return try? scanner.member("progressToken", of: meta)
    }

    /// Where the member `key` of `params` is in ``bytes``.
    func paramsRange(of key: String) -> Range<Int>? {
        guard let paramsRange else { return nil }
        return try? JSONScanner(bytes).member(key, of: paramsRange)
    }

    /// The bytes with the given ranges (which must not overlap) replaced.
    func replacing(_ replacements: [(range: Range<Int>, bytes: [UInt8])]) -> [UInt8] {
        var out = bytes
        for replacement in replacements.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
            out.replaceSubrange(replacement.range, with: replacement.bytes)
        }
        return out
    }

    /// The raw bytes of `params`, when present.
    public var paramsBytes: ArraySlice<UInt8>? { paramsRange.map { bytes[$0] } }

    /// The raw bytes of `result`, when present.
    public var resultBytes: ArraySlice<UInt8>? { resultRange.map { bytes[$0] } }

    /// `params` decoded, for the requests the gateway decides on.
    public func decodedParams() -> JSONValue? {
        guard let paramsRange else { return nil }
        return try? JSONValue(parsing: String(decoding: bytes[paramsRange], as: UTF8.self))
    }

    /// The string member `key` of `params` (`name` of a `tools/call`, `cursor`, ...).
    public func paramsString(_ key: String) -> String? {
        guard let paramsRange else { return nil }
        let scanner = JSONScanner(bytes)
        guard let range = try? scanner.member(key, of: paramsRange) else { return nil }
        return scanner.string(at: range)
    }

    /// `error.code` of an error response, when it is an integer.
    public var errorCode: Int? {
        guard let errorRange, let code = try? JSONScanner(bytes).member("code", of: errorRange) else { return nil }
        return Int(String(decoding: bytes[code], as: UTF8.self))
    }

    /// `error.message` of an error response, when it is a string.
    public var errorMessage: String? {
        let scanner = JSONScanner(bytes)
        guard let errorRange, let message = try? scanner.member("message", of: errorRange) else { return nil }
        return scanner.string(at: message)
    }

    /// The string member `key` of `params._meta` (the protocol version a 2026-07-28 request carries, ...).
    public func metaString(_ key: String) -> String? {
        guard let meta = paramsRange(of: "_meta") else { return nil }
        let scanner = JSONScanner(bytes)
        guard let range = try? scanner.member(key, of: meta) else { return nil }
        return scanner.string(at: range)
    }

    /// The raw bytes of `params._meta.progressToken`, normalised as an id (progress tokens are strings or integers).
    public var progressToken: JSONRPCID? {
        guard let paramsRange else { return nil }
        let scanner = JSONScanner(bytes)
        guard let meta = try? scanner.member("_meta", of: paramsRange),
            let token = try? scanner.member("progressToken", of: meta)
        else { return nil }
        return JSONRPCID(bytes: Array(bytes[token]), scanner: scanner, range: token)
    }

    /// For notifications that refer to a request or a progress token (`notifications/progress`,
    /// `notifications/cancelled`), the member `key` of `params` read as an id.
    public func paramsID(_ key: String) -> JSONRPCID? {
        guard let paramsRange else { return nil }
        let scanner = JSONScanner(bytes)
        guard let range = try? scanner.member(key, of: paramsRange) else { return nil }
        return JSONRPCID(bytes: Array(bytes[range]), scanner: scanner, range: range)
    }

    /// The message with its line breaks (which valid JSON can only have as whitespace) made spaces, for
    /// newline-delimited transports such as stdio.
    public var singleLine: [UInt8] {
        guard bytes.contains(where: { $0 == 0x0A || $0 == 0x0D }) else { return bytes }
        return bytes.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }
    }
}

/// A request id or progress token: a JSON string or integer, kept as written and compared by value.
///
/// An integer is digits only (no fraction, no exponent) and at most 2^53 - 1 either side of 0, the integers every
/// MCP SDK reads and writes back unchanged (a JavaScript peer rounds larger ones; a Python peer refuses `1.5` and
/// `1e2` as ids and drops the request). `-0` is the id `0`.
public struct JSONRPCID: Sendable, Hashable, CustomStringConvertible {
    /// The most bytes an id of a message may have as written, quotes and escapes included.
    public static let maxBytes = 256
    /// The largest integer id either way: 2^53 - 1.
    public static let maxInteger: Int64 = 9_007_199_254_740_991

    /// The id's JSON text as written (`7`, `"abc"`), for echoing it back.
    public let raw: [UInt8]
    /// `n:<the integer in decimal>` or `s:<decoded string>`: equal ids compare equal.
    let key: String

    init?(bytes: [UInt8], scanner: JSONScanner, range: Range<Int>) {
        guard let first = bytes.first else { return nil }
        if first == UInt8(ascii: "\"") {
            guard let text = scanner.string(at: range) else { return nil }
            key = "s:" + text
        } else if let integer = Self.integer(bytes) {
            key = "n:" + String(integer)
        } else {
            return nil
        }
        raw = bytes
    }

    /// The value of `bytes` when they are an integer id as written: an optional `-`, then 1 to 16 digits (JSON
    /// allows no leading zero), at most ``maxInteger``.
    static func integer(_ bytes: [UInt8]) -> Int64? {
        var index = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { index = 1 }
        let digits = bytes.count - index
        guard digits > 0, digits <= 16 else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int64(digit)
            index += 1
        }
        guard value <= maxInteger else { return nil }
        return negative ? -value : value
    }

    /// An id from its JSON text (`7`, `"abc"`), as recorded earlier from ``raw``.
    init?(raw: [UInt8]) {
        self.init(bytes: raw, scanner: JSONScanner(raw), range: 0..<raw.count)
    }

    /// A string id of the gateway's own (for requests it sends upstream itself).
    public init(string: String) {
        raw = Array(JSONRPCWriter.string(string).utf8)
        key = "s:" + string
    }

    public static func == (lhs: JSONRPCID, rhs: JSONRPCID) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }
    public var description: String { String(decoding: raw, as: UTF8.self) }
}
