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

    /// UTC, to the nearest millisecond (Foundation's formatter truncates, so it writes 0.999 as `.998`: not used).
    @Test(arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"), (0.999, "1970-01-01T00:00:00.999Z"), (951_782_400.5, "2000-02-29T00:00:00.500Z"),
        (1_764_655_561.105, "2025-12-02T06:06:01.105Z"), (4_102_444_799.999, "2099-12-31T23:59:59.999Z"),
        (1_764_655_561.9996, "2025-12-02T06:06:02.000Z"),
    ])
    func timestampsAreUTCWithMilliseconds(seconds: Double, expected: String) throws {
        let text = EventCoding.timestamp(Date(timeIntervalSince1970: seconds))
        #expect(text == expected)
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)
        #expect(abs(try style.parse(text).timeIntervalSince1970 - seconds) <= 0.0005)
    }

    /// A time read back from the log and written again keeps its text: otherwise a state re-encoded after each event
    /// would drift a millisecond from the same state folded in one go (a rebuilt projection would differ from the live).
    @Test func timesSurviveAnyNumberOfRoundTrips() throws {
        struct Stamped: Codable { var at: Date }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let original = Date(timeIntervalSince1970: Double.random(in: 1_700_000_000...1_900_000_000, using: &generator))
            let once = try EventCoding.encode(Stamped(at: original))
            let twice = try EventCoding.encode(try EventCoding.decode(Stamped.self, from: once))
            let thrice = try EventCoding.encode(try EventCoding.decode(Stamped.self, from: twice))
            #expect(once == twice && twice == thrice, "\(String(decoding: once, as: UTF8.self)) \(String(decoding: twice, as: UTF8.self))")
        }
    }
}
