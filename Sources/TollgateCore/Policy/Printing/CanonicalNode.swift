/// A document in a fixed order with layout hints, rendered as YAML or JSON by ``PolicyPrinter``.
indirect enum CanonicalNode: Sendable {
    case scalar(JSONValue)
    case list([CanonicalNode], flow: Bool)
    case map([(String, CanonicalNode)], flow: Bool)

    static func string(_ value: String) -> CanonicalNode { .scalar(.string(value)) }
    static func number(_ value: Double) -> CanonicalNode { .scalar(.number(value)) }

    /// A JSON value in flow style, object keys sorted.
    static func value(_ value: JSONValue) -> CanonicalNode {
        switch value {
        case .array(let items): .list(items.map(Self.value), flow: true)
        case .object(let members):
            .map(members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { ($0, Self.value(members[$0]!)) }, flow: true)
        default: .scalar(value)
        }
    }

    var isEmptyCollection: Bool {
        switch self {
        case .list(let items, _): items.isEmpty
        case .map(let members, _): members.isEmpty
        case .scalar: false
        }
    }

    /// Whether the node prints on one line: scalars, flow collections, empty collections.
    var isInline: Bool {
        switch self {
        case .scalar: true
        case .list(let items, let flow): flow || items.isEmpty
        case .map(let members, let flow): flow || members.isEmpty
        }
    }
}
