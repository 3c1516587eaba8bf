import Foundation

/// An id in an event (`callID`, `approvalID`): written in lowercase, the one spelling the gateway uses for every id
/// (streams `call-<id>`, logs, API answers, webhooks, `_meta`), and read in either case.
///
/// Events written before ids were lowercase carry Swift's `uuidString`, which is uppercase. The log is never
/// rewritten (its seals cover the bytes), so an id read from the log keeps the text it was read from and is written
/// back with it: a state encoded again from old events, such as an approval in the approvals projection (which the
/// database checks against its request's bytes in the log), still matches them. Two ids are equal when their UUIDs are,
/// whatever their spelling.
///
/// ```swift
/// struct ApprovalGranted: Codable {
///     @EventID public var approvalID: UUID
/// }
/// ```
@propertyWrapper
public struct EventID: Codable, Sendable, Hashable {
    public var wrappedValue: UUID {
        didSet { spelling = nil }
    }
    /// The text it was read from, when that was not the lowercase form.
    private var spelling: String?

    public init(wrappedValue: UUID) {
        self.wrappedValue = wrappedValue
    }

    /// The id as its event writes it: lowercase, or as it was read.
    public var text: String { spelling ?? wrappedValue.lowercasedString }

    /// `$callID.text` gives the text an event writes.
    public var projectedValue: EventID { self }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = UUID(uuidString: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a UUID: \(text)")
        }
        wrappedValue = id
        spelling = text == id.lowercasedString ? nil : text
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    public static func == (lhs: EventID, rhs: EventID) -> Bool { lhs.wrappedValue == rhs.wrappedValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(wrappedValue) }
}
