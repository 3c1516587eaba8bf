/// A line and column in a policy or configuration file, both counted from 1 (columns in Unicode scalars).
public struct SourcePosition: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// A document read from JSON or YAML, with the location of every value and mapping keys in the order written, so
/// the validator can point at the exact place of each error whatever the format.
struct SourceNode: Sendable {
    enum Value: Sendable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case sequence([SourceNode])
        case mapping([Member])
    }

    struct Member: Sendable {
        var key: String
        var keyLocation: SourcePosition?
        var value: SourceNode
    }

    var value: Value
    var location: SourcePosition?

    init(_ value: Value, at location: SourcePosition?) {
        self.value = value
        self.location = location
    }

    /// A word for the kind of value, for error messages: "a string", "a list", ...
    var kindDescription: String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }

    /// The value as written, shortened, for "found ..." in error messages.
    var shortDescription: String {
        switch value {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .number(let value): CanonicalNumber.format(value)
        case .string(let value): "`\(value.count > 60 ? String(value.prefix(57)) + "..." : value)`"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }

    /// The node as a JSON value (condition values), dropping locations.
    var jsonValue: JSONValue {
        switch value {
        case .null: .null
        case .bool(let value): .bool(value)
        case .number(let value): .number(value)
        case .string(let value): .string(value)
        case .sequence(let items): .array(items.map(\.jsonValue))
        case .mapping(let members):
            .object(Dictionary(members.map { ($0.key, $0.value.jsonValue) }, uniquingKeysWith: { first, _ in first }))
        }
    }
}
