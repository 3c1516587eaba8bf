import CLibPQ
import Foundation

/// The rows a statement returned, decoded on demand from libpq's text format.
///
/// ```swift
/// let result = try connection.query("SELECT id, name FROM users WHERE id = $1", [42])
/// for row in result.rows {
///     let name = try row.decode(String.self, "name")
/// }
/// ```
public final class PostgresResult: @unchecked Sendable {
    // Immutable after creation; libpq's accessors on a finished PGresult only read it.
    private let handle: OpaquePointer
    public let rowCount: Int
    public let columnNames: [String]

    init(handle: OpaquePointer) {
        self.handle = handle
        self.rowCount = Int(PQntuples(handle))
        let columns = Int(PQnfields(handle))
        self.columnNames = (0..<columns).map { String(cString: PQfname(handle, Int32($0))) }
    }

    deinit { PQclear(handle) }

    /// Rows changed by an `INSERT`, `UPDATE` or `DELETE` (libpq's `PQcmdTuples`).
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }

    public var rows: [PostgresRow] { (0..<rowCount).map { PostgresRow(result: self, index: $0) } }

    public subscript(row: Int) -> PostgresRow { PostgresRow(result: self, index: row) }

    func columnIndex(_ name: String) -> Int? { columnNames.firstIndex(of: name) }

    func cell(row: Int, column: Int) -> PostgresCell {
        let isNull = PQgetisnull(handle, Int32(row), Int32(column)) == 1
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let pointer = PQgetvalue(handle, Int32(row), Int32(column))
        let bytes = pointer.map { UnsafeRawBufferPointer(start: $0, count: length) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
        return PostgresCell(isNull: isNull, bytes: bytes, column: column < columnNames.count ? columnNames[column] : "#\(column)")
    }
}

/// One row of a `PostgresResult`.
public struct PostgresRow: Sendable {
    let result: PostgresResult
    let index: Int

    /// The value in column `column` (0-based), decoded as `T`. Ask for an `Optional` type where the column may be NULL.
    public func decode<T: PostgresDecodable>(_ type: T.Type, _ column: Int) throws -> T {
        guard column >= 0 && column < result.columnNames.count else {
            throw PostgresError.client(message: "column index \(column) is out of range (\(result.columnNames.count) columns)")
        }
        return try withExtendedLifetime(result) { try T.decode(result.cell(row: index, column: column)) }
    }

    /// The value in the column named `name`, decoded as `T`.
    public func decode<T: PostgresDecodable>(_ type: T.Type, _ name: String) throws -> T {
        guard let column = result.columnIndex(name) else {
            throw PostgresError.client(message: "the result has no column \"\(name)\" (it has \(result.columnNames.joined(separator: ", ")))")
        }
        return try decode(type, column)
    }

    public func isNull(_ column: Int) -> Bool { result.cell(row: index, column: column).isNull }

    /// The raw text of column `column` as libpq holds it (empty for NULL), valid only inside `body`: for reading
    /// many rows without making a `String` or an `Array` of each value.
    public func withBytes<R>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard column >= 0 && column < result.columnNames.count else {
            throw PostgresError.client(message: "column index \(column) is out of range (\(result.columnNames.count) columns)")
        }
        return try withExtendedLifetime(result) { try body(result.cell(row: index, column: column).bytes) }
    }

    /// A `bigint`, `xid8` or `timestamptz` column of a binary-format result (`query(..., binaryResults: true)`): its
    /// eight big-endian bytes (for `timestamptz`, microseconds since 2000-01-01 UTC).
    public func binaryInt64(_ column: Int) throws -> Int64 {
        try withBytes(column) { bytes in
            guard bytes.count == 8 else {
                throw PostgresError.decoding(column: result.columnNames[column], type: "binary 64-bit integer", value: "\(bytes.count) bytes")
            }
            return bytes.reduce(Int64(0)) { $0 << 8 | Int64($1) }
        }
    }
}

/// A raw cell as libpq holds it: valid only while its result lives.
public struct PostgresCell {
    public let isNull: Bool
    public let bytes: UnsafeRawBufferPointer
    public let column: String

    var text: String { String(decoding: bytes, as: UTF8.self) }

    func failure(_ type: String) -> PostgresError {
        .decoding(column: column, type: type, value: isNull ? "NULL" : text)
    }

    func nonNull(_ type: String) throws -> UnsafeRawBufferPointer {
        if isNull { throw failure(type) }
        return bytes
    }
}

/// A Swift type that a column's text value decodes to.
public protocol PostgresDecodable {
    static func decode(_ cell: PostgresCell) throws -> Self
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> Self {
        cell.isNull ? .none : try Wrapped.decode(cell)
    }
}

extension String: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> String {
        String(decoding: try cell.nonNull("text"), as: UTF8.self)
    }
}

extension Int64: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> Int64 {
        let bytes = try cell.nonNull("integer")
        guard !bytes.isEmpty else { throw cell.failure("integer") }
        var value: Int64 = 0
        var negative = false
        for (offset, byte) in bytes.enumerated() {
            if offset == 0 && byte == UInt8(ascii: "-") {
                negative = true
                continue
            }
            guard byte >= 48 && byte <= 57 else { throw cell.failure("integer") }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - 48))
            if overflow1 || overflow2 { throw cell.failure("64-bit integer") }
            value = sum
        }
        return negative ? -value : value
    }
}

extension UInt64: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> UInt64 {
        guard let value = UInt64(try String.decode(cell)) else { throw cell.failure("unsigned 64-bit integer") }
        return value
    }
}

extension Int: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> Int { Int(try Int64.decode(cell)) }
}

extension Int32: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> Int32 {
        guard let value = Int32(exactly: try Int64.decode(cell)) else { throw cell.failure("32-bit integer") }
        return value
    }
}

extension Double: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> Double {
        guard let value = Double(try String.decode(cell)) else { throw cell.failure("double precision") }
        return value
    }
}

extension Bool: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> Bool {
        let bytes = try cell.nonNull("boolean")
        guard bytes.count == 1 else { throw cell.failure("boolean") }
        switch bytes[0] {
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"): return false
        default: throw cell.failure("boolean")
        }
    }
}

extension UUID: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws -> UUID {
        guard let value = UUID(uuidString: try String.decode(cell)) else { throw cell.failure("uuid") }
        return value
    }
}

extension Date: PostgresDecodable {
    /// `timestamptz` in ISO style (the connection sets `DateStyle = ISO` and `TimeZone = UTC`).
    public static func decode(_ cell: PostgresCell) throws -> Date {
        guard let value = PostgresTimestamp.parse(try String.decode(cell)) else { throw cell.failure("timestamptz") }
        return value
    }
}

extension Data: PostgresDecodable {
    /// `bytea` in hex output format (`\x0a1b...`), PostgreSQL's default since 9.0.
    public static func decode(_ cell: PostgresCell) throws -> Data {
        let bytes = try cell.nonNull("bytea")
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x"), bytes.count % 2 == 0 else {
            throw cell.failure("bytea (hex format)")
        }
        func nibble(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 48...57: return byte - 48
            case 97...102: return byte - 87
            case 65...70: return byte - 55
            default: return nil
            }
        }
        var data = Data(capacity: (bytes.count - 2) / 2)
        var index = 2
        while index < bytes.count {
            guard let high = nibble(bytes[index]), let low = nibble(bytes[index + 1]) else { throw cell.failure("bytea (hex format)") }
            data.append(high << 4 | low)
            index += 2
        }
        return data
    }
}

extension JSONText: PostgresDecodable {
    /// `json` or `jsonb` as the server prints it.
    public static func decode(_ cell: PostgresCell) throws -> JSONText {
        JSONText([UInt8](try cell.nonNull("json")))
    }
}
