import Foundation
import Testing

@testable import TollgateCore

@Suite struct EventCodingTests {
    let decided = ToolCallDecided(
        callID: UUID(), agent: "a", grant: "g", session: "s", server: "srv", tool: "transfer", requestID: "\"7\"",
        arguments: ["amount": 12.5, "to": "bob \"b\"\n"], argumentsHash: ToolCallDecided.hash(arguments: ["amount": 12.5]), argumentsStorage: "full",
        decision: "limited", reason: "over", retryAfter: 30, rule: "tools.transfer.limits[0]", policyHash: "sha256:00", category: "financial",
        reservations: [.init(server: "srv", counter: "c", scope: "grant:g", windowStart: 1_764_000_000, windowSeconds: 60, amount: 12.5)],
        decisionMicros: 42, decidedAt: Date(timeIntervalSince1970: 1_764_655_561.105))

    /// The generic, Codable path (in a generic context the direct overloads do not apply).
    func codableEncoding<T: Encodable>(_ value: T) throws -> [UInt8] {
        try EventCoding.encode(value)
    }

    @Test func theDirectEncodingReadsBackLikeTheCodableOne() throws {
        let direct = try EventCoding.decode(ToolCallDecided.self, from: EventCoding.encode(decided))
        let codable = try EventCoding.decode(ToolCallDecided.self, from: try codableEncoding(decided))
        #expect(direct == codable)
        #expect(direct.callID == decided.callID && direct.reservations == decided.reservations && direct.arguments == decided.arguments)
        #expect(abs(direct.decidedAt.timeIntervalSince1970 - 1_764_655_561.105) < 0.0005)

        let completed = ToolCallCompleted(
            callID: decided.callID, server: "srv", tool: "t", outcome: "rpc_error", errorCode: -32000, error: nil, durationMillis: 1.25,
            released: decided.reservations, completedAt: Date(timeIntervalSince1970: 0.001))
        #expect(try EventCoding.decode(ToolCallCompleted.self, from: EventCoding.encode(completed)) == completed)
    }

    @Test(arguments: [0.0, 0.999, 951_782_400.5, 1_764_655_561.105, 4_102_444_799.999])
    func timestampsAreUTCWithMilliseconds(seconds: Double) throws {
        let text = EventCoding.timestamp(Date(timeIntervalSince1970: seconds))
        #expect(text.count == 24 && text.hasSuffix("Z"), "\(text)")
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)
        #expect(text == Date(timeIntervalSince1970: seconds).formatted(style))
    }
}
