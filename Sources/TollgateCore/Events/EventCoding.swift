import Foundation

/// How Tollgate's events are written as JSON: the types' own keys (`callID`, `policyHash`) in sorted order, times in UTC ISO 8601 with
/// milliseconds, so an event reads the same whoever wrote it and whatever the machine's time zone.
///
/// ```swift
/// let bytes = try EventCoding.encode(decided)
/// let back = try EventCoding.decode(ToolCallDecided.self, from: bytes)
/// ```
public enum EventCoding {
    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)

    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        return [UInt8](try encoder.encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = try? style.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 time: \(text)"))
            }
            return date
        }
        return try decoder.decode(type, from: Data(bytes))
    }
}

extension EventCoding {
    /// `date` as `2026-12-02T06:06:01.105Z`: UTC, milliseconds; the same text as the Codable path writes, made
    /// without a formatter (this runs twice for every tool call).
    public static func timestamp(_ date: Date) -> String {
        // To the nearest millisecond, not down: a time read back from this text (46.203 parses to 46.20299…) must give
        // the same text again, or a state re-encoded after each event drifts from the same state folded in one go.
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var seconds = time_t(milliseconds / 1000)
        let fraction = Int(milliseconds % 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(fraction, 3))Z"
    }

    /// A decision as the log stores it, written directly (the hot path of every tool call).
    public static func encode(_ event: ToolCallDecided) -> [UInt8] {
        var object: [String: JSONValue] = [
            "callID": .string(event.$callID.text), "agent": .string(event.agent), "grant": .string(event.grant),
            "session": .string(event.session), "server": .string(event.server), "tool": .string(event.tool),
            "requestID": .string(event.requestID), "argumentsHash": .string(event.argumentsHash),
            "argumentsStorage": .string(event.argumentsStorage), "decision": .string(event.decision), "rule": .string(event.rule),
            "policyHash": .string(event.policyHash), "reservations": .array(event.reservations.map(\.json)),
            "decisionMicros": .number(Double(event.decisionMicros)), "decidedAt": .string(timestamp(event.decidedAt)),
        ]
        if let arguments = event.arguments { object["arguments"] = arguments }
        if let reason = event.reason { object["reason"] = .string(reason) }
        if let retryAfter = event.retryAfter { object["retryAfter"] = .number(Double(retryAfter)) }
        if let category = event.category { object["category"] = .string(category) }
        if let approvalID = event.approvalID { object["approvalID"] = .string(approvalID.lowercasedString) }
        if let summary = event.argumentsSummary { object["argumentsSummary"] = summary.json }
        if let hash = event.definitionHash { object["definitionHash"] = .string(hash) }
        if let status = event.definitionStatus { object["definitionStatus"] = .string(status) }
        return Array(JSONValue.object(object).canonicalJSON.utf8)
    }

    /// An outcome as the log stores it, written directly.
    public static func encode(_ event: ToolCallCompleted) -> [UInt8] {
        var object: [String: JSONValue] = [
            "callID": .string(event.$callID.text), "server": .string(event.server), "tool": .string(event.tool),
            "outcome": .string(event.outcome), "durationMillis": .number(event.durationMillis), "released": .array(event.released.map(\.json)),
            "completedAt": .string(timestamp(event.completedAt)),
        ]
        if let errorCode = event.errorCode { object["errorCode"] = .number(Double(errorCode)) }
        if let error = event.error { object["error"] = .string(error) }
        return Array(JSONValue.object(object).canonicalJSON.utf8)
    }
}

extension ToolCallDecided.Reservation {
    var json: JSONValue {
        .object([
            "server": .string(server), "counter": .string(counter), "scope": .string(scope), "windowStart": .number(Double(windowStart)),
            "windowSeconds": .number(Double(windowSeconds)), "amount": .number(amount),
        ])
    }
}
