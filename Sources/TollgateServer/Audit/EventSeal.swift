import Crypto
import Foundation
import TollgateCore
import TollgatePostgres

/// The hash chain over the log: each event's seal is SHA-256(previous seal ‖ SHA-256(the event's canonical bytes)),
/// in global order, starting from 32 zero bytes. Changing, removing or inserting an event changes every seal after it.
///
/// The canonical bytes are the event's position, transaction id, stream, version, type, recording time (UTC
/// microseconds since the epoch, an integer) and its data and metadata as canonical JSON (keys sorted, numbers in
/// their shortest form), each preceded by its length: never `jsonb::text`, never a time rendered in a time zone.
///
/// ```swift
/// var chain = EventSeal.genesis
/// var hasher = EventSeal.LeafHasher()
/// for event in events { chain = EventSeal.next(chain, leaf: try hasher.leaf(of: event)) }
/// ```
enum EventSeal {
    static let genesis = [UInt8](repeating: 0, count: 32)

    /// The hash of one event's canonical bytes.
    static func leaf(
        position: Int64, transactionID: UInt64, streamID: String, version: Int64, type: String, recordedMicros: Int64, data: [UInt8],
        metadata: [UInt8]
    ) throws -> [UInt8] {
        var hasher = LeafHasher()
        return Array(
            try hasher.leaf(
                position: position, transactionID: transactionID, streamID: streamID, version: version, type: type, recordedMicros: recordedMicros,
                data: data, metadata: metadata))
    }

    /// Hashes events one after another, keeping the canonicalizer's scratch space between them: what
    /// `tollgate audit verify` runs over the whole log, reading each field where libpq holds it.
    struct LeafHasher {
        private var canonicalizer = CanonicalJSON.Canonicalizer()

        mutating func leaf(
            position: Int64, transactionID: UInt64, streamID: UnsafeRawBufferPointer, version: Int64, type: UnsafeRawBufferPointer,
            recordedMicros: Int64, data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer
        ) throws -> SHA256Digest {
            var hasher = SHA256()
            func field(_ bytes: UnsafeRawBufferPointer) {
                withUnsafeBytes(of: UInt64(bytes.count).bigEndian) { hasher.update(bufferPointer: $0) }
                hasher.update(bufferPointer: bytes)
            }
            func field(_ number: some BinaryInteger) {
                var text = String(number)
                text.withUTF8 { field(UnsafeRawBufferPointer($0)) }
            }
            Self.tag.withUnsafeBytes { field($0) }
            field(position)
            field(transactionID)
            field(streamID)
            field(version)
            field(type)
            field(recordedMicros)
            try canonicalizer.canonicalize(data) { field($0) }
            try canonicalizer.canonicalize(metadata) { field($0) }
            return hasher.finalize()
        }

        mutating func leaf(of event: RecordedEvent) throws -> SHA256Digest {
            try leaf(
                position: event.position, transactionID: event.transactionID, streamID: event.streamID, version: event.version, type: event.type,
                recordedMicros: Int64((event.recordedAt.timeIntervalSince1970 * 1_000_000).rounded()), data: event.data, metadata: event.metadata)
        }

        mutating func leaf(
            position: Int64, transactionID: UInt64, streamID: String, version: Int64, type: String, recordedMicros: Int64, data: [UInt8],
            metadata: [UInt8]
        ) throws -> SHA256Digest {
            var streamID = streamID
            var type = type
            return try streamID.withUTF8 { streamID in
                try type.withUTF8 { type in
                    try data.withUnsafeBytes { data in
                        try metadata.withUnsafeBytes { metadata in
                            try leaf(
                                position: position, transactionID: transactionID, streamID: UnsafeRawBufferPointer(streamID), version: version,
                                type: UnsafeRawBufferPointer(type), recordedMicros: recordedMicros, data: data, metadata: metadata)
                        }
                    }
                }
            }
        }

        private static let tag = Array("tollgate-event-v1".utf8)
    }

    static func next(_ previous: [UInt8], leaf: some ContiguousBytes) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        leaf.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return Array(hasher.finalize())
    }
}

/// Projection `seal`: the seal of every event, in `tollgate.event_seals`, as the log grows. It is never rebuilt: a
/// rebuild would seal whatever the log holds now, which is what `tollgate audit verify` checks against.
struct EventSealProjection: Projection {
    let name = "seal"

    func reset(on connection: PostgresConnection) throws {
        throw AuditError.sealIsNotRebuilt
    }

    func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws {
        var chain = try Self.head(on: connection)?.chain ?? EventSeal.genesis
        var seals: [SealStore.Seal] = []
        seals.reserveCapacity(events.count)
        var hasher = EventSeal.LeafHasher()
        for event in events {
            chain = EventSeal.next(chain, leaf: try hasher.leaf(of: event))
            seals.append(SealStore.Seal(position: event.logPosition, chain: Hex.lowercase(chain)))
        }
        try SealStore.append(seals, on: connection)
    }

    /// The last seal: where the chain stands.
    static func head(on connection: PostgresConnection) throws -> (position: LogPosition, chain: [UInt8])? {
        guard let head = try SealStore.head(on: connection) else { return nil }
        guard let chain = Hex.bytes(head.chain), chain.count == 32 else { throw AuditError.badSeal(head.chain) }
        return (head.position, chain)
    }
}

/// Why the seal could not be used.
public enum AuditError: Error, CustomStringConvertible {
    case sealIsNotRebuilt
    case badSeal(String)
    case unknownJSONBFormat(UInt8)

    public var description: String {
        switch self {
        case .sealIsNotRebuilt:
            "the seal is never rebuilt: it is the record `tollgate audit verify` checks the log against (a rebuild would seal a tampered log)"
        case .badSeal(let text): "a stored seal is not 64 hex digits: \(text.prefix(80))"
        case .unknownJSONBFormat(let version): "the database sent jsonb in binary format version \(version); this build reads version 1"
        }
    }
}
