import Foundation

extension JSONValue {
    /// Why a JSON text could not be read, and where.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var line: Int
        public var column: Int

        public var description: String { "\(line):\(column): \(message)" }
    }

    /// Parses strict JSON (RFC 8259), nested at most `maxDepth` deep.
    ///
    /// ```swift
    /// let args = try JSONValue(parsing: Data(#"{"amount": 1200}"#.utf8))
    /// ```
    public init(parsing data: Data, maxDepth: Int = 128) throws(ParseError) {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ParseError(message: "the text is not valid UTF-8", line: 1, column: 1)
        }
        try self.init(parsing: text, maxDepth: maxDepth)
    }

    /// Parses strict JSON (RFC 8259), nested at most `maxDepth` deep.
    public init(parsing text: String, maxDepth: Int = 128) throws(ParseError) {
        var reader = JSONSourceReader(text: text, limits: SourceLimits(maxBytes: .max, maxDepth: maxDepth, maxNodes: .max))
        do {
            self = try reader.read().jsonValue
        } catch {
            throw ParseError(message: error.message, line: error.location.line, column: error.location.column)
        }
    }
}
