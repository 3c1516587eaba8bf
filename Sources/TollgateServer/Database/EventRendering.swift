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
            + "\(event.streamID) v\(event.version)  \(event.type)  \(shortData)"
    }

    static func quoted(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon))
    }
}
