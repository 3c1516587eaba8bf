import Foundation
import TollgateCore
import TollgatePostgres

/// How the command line prints an event: an aligned line for people, or one JSON object for scripts.
public enum EventRendering {
    public static func render(_ event: RecordedEvent, json: Bool) -> String {
        if json {
            // The data and metadata are JSON already (PostgreSQL checked them); they are embedded as they are.
            var line = "{\"position\":\(event.position),\"transaction_id\":\(event.transactionID),"
            line += "\"stream\":\(quoted(event.streamID)),\"version\":\(event.version),\"type\":\(quoted(event.type)),"
            line += "\"recorded_at\":\(quoted(timestamp(event.recordedAt))),"
            line += "\"data\":\(String(decoding: event.data, as: UTF8.self)),\"metadata\":\(String(decoding: event.metadata, as: UTF8.self))}"
            return line
        }
        let data = String(decoding: event.data, as: UTF8.self)
        let shortData = (data.count > 100 ? String(data.prefix(99)) + "…" : data).escapingInvisibles()
        return "\(String(event.position).padding(toLength: 8, withPad: " ", startingAt: 0)) \(timestamp(event.recordedAt))  "
            + "\(event.streamID) v\(event.version)  \(event.type)  \(shortData)\(note(event))"
    }

    /// What the first 100 characters of an event's data would hide: a refused call whose arguments were summarized,
    /// an agent's refusals counted in one summary.
    static func note(_ event: RecordedEvent) -> String {
        switch event.type {
        case ToolCallDecided.type:
            guard let decided = try? EventCoding.decode(ToolCallDecided.self, from: event.data), let summary = decided.argumentsSummary else {
                return ""
            }
            return "  [arguments over the bound, not stored: \(summary.bytes) bytes, sha256 \(decided.argumentsHash.prefix(12))…]"
        case RefusalsSummarized.type:
            guard let summary = try? EventCoding.decode(RefusalsSummarized.self, from: event.data) else { return "" }
            return "  [\(summary.summarized) refusals of \(summary.agent) past its budget of \(summary.recorded), counted here]"
        default: return ""
        }
    }

    static func quoted(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon))
    }
}
