extension PolicyDecoder {
    static let requiredFieldHelp: [String: String] = [
        "version": "version: \"1\"",
        "counter": "a counter name such as transfers_per_minute",
        "window": "second, minute, hour, day, or a duration such as 90s, 15m, 2h, 1d",
        "max": "a number greater than 0",
        "path": "args.<field>, agent, grant, session, server or tool",
        "op": PolicyCondition.Operator.allCases.map(\.rawValue).joined(separator: ", "),
        "value": "the value to compare with",
    ]

    func counterDefinition(_ name: String) -> (PolicyLimit, String)? {
        counterTable[name].map { ($0.limit, $0.path) }
    }
}
