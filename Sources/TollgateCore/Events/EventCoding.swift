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
            try container.encode(date.formatted(style))
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
