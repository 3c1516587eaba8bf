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
        var pinned = decided
        pinned.definitionHash = String(repeating: "a", count: 64)
        pinned.definitionStatus = "changed"
        let pinnedBack = try EventCoding.decode(ToolCallDecided.self, from: EventCoding.encode(pinned))
        #expect(pinnedBack == (try EventCoding.decode(ToolCallDecided.self, from: try codableEncoding(pinned))))
        #expect(pinnedBack.definitionHash == pinned.definitionHash && pinnedBack.definitionStatus == "changed")

        let completed = ToolCallCompleted(
            callID: decided.callID, server: "srv", tool: "t", outcome: "rpc_error", errorCode: -32000, error: nil, durationMillis: 1.25,
            released: decided.reservations, completedAt: Date(timeIntervalSince1970: 0.001))
        #expect(try EventCoding.decode(ToolCallCompleted.self, from: EventCoding.encode(completed)) == completed)
    }

    /// Ids are written in lowercase; an old event's uppercase ids read as the same ids, and an event read from the log
    /// is written back with the bytes it was read from (the database checks an approval's state against them).
    @Test func idsAreWrittenLowercaseAndReadInEitherCase() throws {
        let id = try #require(UUID(uuidString: "9AFEB4D5-0C2E-4F7A-8D3B-5E6F7A8B9C0D"))
        #expect(id.lowercasedString == "9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d")
        for _ in 0..<100 {
            let random = UUID.random()
            #expect(random.lowercasedString == random.uuidString.lowercased())
        }
        var call = decided
        call.callID = id
        call.approvalID = id
        let new = String(decoding: EventCoding.encode(call), as: UTF8.self)
        #expect(
            new.contains(#""callID":"9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d""#) && new.contains(#""approvalID":"9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d""#)
        )
        let old = new.replacingOccurrences(of: "9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d", with: "9AFEB4D5-0C2E-4F7A-8D3B-5E6F7A8B9C0D")
        let read = try EventCoding.decode(ToolCallDecided.self, from: Array(old.utf8))
        #expect(read == call && read.callID == id && read.approvalID == id)

        let requested = ApprovalRequested(
            approvalID: id, callID: id, agent: "a", grant: "g", session: "s", server: "srv", tool: "t", arguments: nil, argumentsHash: "h",
            argumentsStorage: "hash", policyHash: "p", rule: "default", reason: nil, quorum: 1, reviewers: [], category: nil,
            requestedAt: Date(timeIntervalSince1970: 0), expiresAt: Date(timeIntervalSince1970: 60))
        let written = String(decoding: try codableEncoding(requested), as: UTF8.self)
        #expect(!written.contains("9AFEB4D5") && written.contains(#""approvalID":"9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d""#))
        let oldBytes = Array(
            written.replacingOccurrences(of: "9afeb4d5-0c2e-4f7a-8d3b-5e6f7a8b9c0d", with: "9AFEB4D5-0C2E-4F7A-8D3B-5E6F7A8B9C0D").utf8)
        let oldRequest = try EventCoding.decode(ApprovalRequested.self, from: oldBytes)
        #expect(oldRequest == requested && oldRequest.approvalID == id)
        #expect(try codableEncoding(oldRequest) == oldBytes, "read from the log, written back as it was read")
        #expect(try codableEncoding(Approval(oldRequest)).count > 0)
        var renamed = oldRequest
        renamed.approvalID = UUID(uuidString: "00000000-0000-4000-8000-00000000000A")!
        #expect(String(decoding: try codableEncoding(renamed), as: UTF8.self).contains("00000000-0000-4000-8000-00000000000a"))
        #expect(throws: DecodingError.self) {
            try EventCoding.decode(ApprovalExpired.self, from: Array(#"{"approvalID":"nope","expiredAt":"1970-01-01T00:00:00.000Z"}"#.utf8))
        }
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
