/// A JSON value, with the members of an object in the order they were written.
///
/// Enough JSON for a load generator: reading JSON-RPC responses (`id`, `result.isError`, `error.code`), checking
/// `--arguments`, and writing the `--format json` report.
///
/// ```swift
/// let response = try JSONValue(parsing: Array(#"{"jsonrpc":"2.0","id":7,"result":{"isError":false}}"#.utf8))
/// response["id"]?.integer  // 7
/// ```
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// A number written without a fraction or an exponent that fits an `Int`.
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// The value of `key` in an object (the last one, as most parsers do, when a key is repeated); `nil` otherwise.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }

    var integer: Int? {
        switch self {
        case .integer(let value): return value
        case .number(let value): return value.rounded() == value && abs(value) < 0x1p62 ? Int(value) : nil
        default: return nil
        }
    }

    var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var isObject: Bool {
        if case .object = self { return true }
        return false
    }
}
