import Foundation

/// An event to append: a type name and JSON data and metadata (UTF-8 bytes of one JSON value each).
public struct NewEvent: Sendable, Hashable {
    public var type: String
    public var data: [UInt8]
    public var metadata: [UInt8]

    public init(type: String, data: [UInt8], metadata: [UInt8] = Array("{}".utf8)) {
        self.type = type
        self.data = data
        self.metadata = metadata
    }

    /// An event whose data is `value` encoded as JSON.
    public init<T: Encodable>(type: String, encoding value: T, metadata: [UInt8] = Array("{}".utf8)) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.init(type: type, data: [UInt8](try encoder.encode(value)), metadata: metadata)
    }

    /// The data as text, for a `jsonb` parameter.
    public var dataText: String { String(decoding: data, as: UTF8.self) }

    /// The metadata as text, for a `jsonb` parameter (`{}` when empty).
    public var metadataText: String { metadata.isEmpty ? "{}" : String(decoding: metadata, as: UTF8.self) }
}

/// What version a stream must be at for an append to go ahead: optimistic concurrency.
public enum ExpectedVersion: Sendable, Hashable, CustomStringConvertible {
    /// Append whatever the stream's version.
    case any
    /// The stream must not exist yet.
    case noStream
    /// The stream's last event must have this version.
    case exactly(Int64)

    var parameter: Int64? {
        switch self {
        case .any: return nil
        case .noStream: return 0
        case .exactly(let version): return version
        }
    }

    public var description: String {
        switch self {
        case .any: return "any version"
        case .noStream: return "no stream"
        case .exactly(let version): return "version \(version)"
        }
    }
}

/// Where a reader has got to in the log: the writing transaction's id and the event's position.
///
/// The log is read in the order (transaction id, position), which is the order in which readers can be sure
/// nothing earlier will still appear. `LogPosition.start` is before every event.
public struct LogPosition: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var transactionID: UInt64
    public var position: Int64

    public static let start = LogPosition(transactionID: 0, position: 0)

    public init(transactionID: UInt64, position: Int64) {
        self.transactionID = transactionID
        self.position = position
    }

    public static func < (lhs: LogPosition, rhs: LogPosition) -> Bool {
        (lhs.transactionID, lhs.position) < (rhs.transactionID, rhs.position)
    }

    /// `transaction/position`, e.g. `7561/1042`.
    public var description: String { "\(transactionID)/\(position)" }

    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let transaction = UInt64(parts[0]), let position = Int64(parts[1]) else { return nil }
        self.init(transactionID: transaction, position: position)
    }
}

/// An event as stored in the log.
public struct RecordedEvent: Sendable, Hashable {
    /// Its place in the global sequence (unique, increasing in the order writers took them).
    public var position: Int64
    /// The id of the transaction that wrote it.
    public var transactionID: UInt64
    public var streamID: String
    /// 1 for a stream's first event.
    public var version: Int64
    public var type: String
    /// The event's JSON data, as PostgreSQL prints `jsonb`.
    public var data: [UInt8]
    public var metadata: [UInt8]
    public var recordedAt: Date

    /// The reader's checkpoint after this event.
    public var logPosition: LogPosition { LogPosition(transactionID: transactionID, position: position) }

    /// The data decoded as `T`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(data))
    }
}

/// The outcome of a successful append.
public struct AppendResult: Sendable, Hashable {
    /// The stream's version after the append: the version of its last new event.
    public var streamVersion: Int64
    /// The position of the last new event.
    public var lastPosition: Int64
}

/// Why an append or a read was refused.
public enum EventStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Optimistic concurrency: the stream was not at the expected version (someone else appended first).
    case wrongExpectedVersion(stream: String, expected: ExpectedVersion, actual: Int64)
    /// The append was malformed: nothing was written.
    case invalidAppend(stream: String, reason: String)

    public var description: String {
        switch self {
        case .wrongExpectedVersion(let stream, let expected, let actual):
            let actualText = actual == 0 ? "does not exist" : "is at version \(actual)"
            return "append to \(stream) expected \(expected), but the stream \(actualText): "
                + "another writer got there first; re-read the stream and decide again"
        case .invalidAppend(let stream, let reason):
            return "append to \(stream) refused: \(reason)"
        }
    }
}
