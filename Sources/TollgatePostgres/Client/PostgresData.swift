import Foundation

/// One parameter of a statement, as it goes over the wire: text, binary bytes (for `bytea`) or NULL.
///
/// Statements only ever carry user values as parameters (`$1`, `$2`, ...), never spliced into the SQL text.
public enum PostgresParameter: Sendable, Hashable {
    case text(String)
    case binary([UInt8])
    case null
}

/// A Swift value that can be sent as a statement parameter.
public protocol PostgresEncodable: Sendable {
    var postgresParameter: PostgresParameter { get }
}

extension String: PostgresEncodable {
    public var postgresParameter: PostgresParameter { .text(self) }
}

extension Int: PostgresEncodable {
    public var postgresParameter: PostgresParameter { .text(String(self)) }
}

extension Int32: PostgresEncodable {
    public var postgresParameter: PostgresParameter { .text(String(self)) }
}

extension Int64: PostgresEncodable {
    public var postgresParameter: PostgresParameter { .text(String(self)) }
}

extension UInt64: PostgresEncodable {
    public var postgresParameter: PostgresParameter { .text(String(self)) }
}

extension Double: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        if isNaN { return .text("NaN") }
        if isInfinite { return .text(self > 0 ? "Infinity" : "-Infinity") }
        return .text(String(self))
    }
}

extension Bool: PostgresEncodable {
    public var postgresParameter: PostgresParameter { .text(self ? "t" : "f") }
}

extension UUID: PostgresEncodable {
    public var postgresParameter: PostgresParameter { .text(uuidString.lowercased()) }
}

extension Date: PostgresEncodable {
    /// Sent as microseconds since the epoch in UTC, which `timestamptz` reads without regard to the session's time zone.
    public var postgresParameter: PostgresParameter {
        .text(PostgresTimestamp.format(self))
    }
}

extension Data: PostgresEncodable {
    /// Sent as binary, for `bytea` columns.
    public var postgresParameter: PostgresParameter { .binary([UInt8](self)) }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        switch self {
        case .none: return .null
        case .some(let value): return value.postgresParameter
        }
    }
}

/// A JSON document sent as text, for `json`/`jsonb` parameters (`$1::jsonb`).
public struct JSONText: PostgresEncodable, Hashable {
    public var bytes: [UInt8]
    public init(_ text: String) { self.bytes = Array(text.utf8) }
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    public var postgresParameter: PostgresParameter { .text(text) }
}

/// A one-dimensional array parameter (`$1::text[]`, `$1::bigint[]`) in PostgreSQL's text array syntax,
/// every element quoted so no value can change the array's shape.
public struct PostgresArray: PostgresEncodable {
    public var elements: [String?]

    public init(_ elements: [String?]) { self.elements = elements }
    public init<T: BinaryInteger>(_ integers: [T]) { self.elements = integers.map { String($0) } }

    /// Values written as text (`Date`, `UUID`, `Bool`, numbers, strings, optionals of them): for `unnest` of many
    /// rows. Not for `Data`, which is sent in binary.
    public init(encoding values: [any PostgresEncodable]) {
        self.elements = values.map { value in
            switch value.postgresParameter {
            case .text(let text): return text
            case .null: return nil
            case .binary: preconditionFailure("PostgresArray(encoding:) takes values sent as text, not bytea")
            }
        }
    }

    /// The array literal `{"a","b\\"c",NULL}`, written as UTF-8 bytes (quotes and backslashes escaped).
    public var postgresParameter: PostgresParameter {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        bytes.append(UInt8(ascii: "{"))
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            guard let element else {
                bytes.append(contentsOf: "NULL".utf8)
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return .text(String(decoding: bytes, as: UTF8.self))
    }
}

/// Reading and writing `timestamptz` text without Foundation's slow date formatters.
enum PostgresTimestamp {
    /// `2026-11-25 08:25:00.123456+00`, always UTC.
    static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        let (year, month, day, hour, minute, second) = civil(fromEpochSeconds: seconds)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))."
            + "\(pad(fraction, 6))+00"
    }

    /// Parses PostgreSQL's ISO output (`DateStyle = ISO`): `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]`.
    static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ count: Int) -> Int64? {
            guard index + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for offset in 0..<count {
                let byte = bytes[index + offset]
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            index += count
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45), let day = number(2),
            expect(32) || expect(84), let hour = number(2), expect(58), let minute = number(2), expect(58),
            let second = number(2)
        else { return nil }
        var micros: Int64 = 0
        if expect(46) {
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            if digits < 6 { for _ in digits..<6 { micros *= 10 } }
        }
        var offsetSeconds: Int64 = 0
        if index < bytes.count {
            let sign: Int64
            if expect(43) { sign = 1 } else if expect(45) { sign = -1 } else { return nil }
            guard let hours = number(2) else { return nil }
            var total = hours * 3600
            if expect(58) {
                guard let minutes = number(2) else { return nil }
                total += minutes * 60
                if expect(58) {
                    guard let secs = number(2) else { return nil }
                    total += secs
                }
            }
            offsetSeconds = sign * total
        }
        guard index == bytes.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let epochSeconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(epochSeconds) + Double(micros) / 1_000_000)
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthIndex = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromEpochSeconds seconds: Int64) -> (Int64, Int64, Int64, Int64, Int64, Int64) {
        var days = seconds / 86_400
        var rest = seconds % 86_400
        if rest < 0 {
            rest += 86_400
            days -= 1
        }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, rest / 3600, (rest % 3600) / 60, rest % 60)
    }
}
