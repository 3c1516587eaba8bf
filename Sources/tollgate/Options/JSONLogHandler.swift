import Foundation
import Logging

/// `logging.format: json`: one JSON object per line on standard error, for a log collector.
///
/// Each line has `time` (UTC, RFC 3339 with milliseconds), `level`, `message` and `logger` (the label), then every
/// metadata key at the top level (`agent`, `server`, `tool`, `call`, `session`, `decision`, `outcome`, `duration_ms`,
/// ...; a key that would shadow one of the four is written with a `meta_` prefix). Values are strings, arrays or
/// objects as the metadata holds them. The gateway never puts an argument value or a key in its metadata; as a second
/// line of defence, metadata under a name that holds secrets (see ``redactedKeys``) is written as `"[redacted]"`.
///
/// The line is built and written with one `write(2)`, so lines of concurrent tasks never interleave.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider

    /// Metadata names never written as they are: arguments, keys, tokens, secrets, passwords, authorization headers.
    static let redactedKeys: Set<String> = [
        "arguments", "argument", "args", "params", "key", "agent_key", "api_key", "token", "bearer", "authorization",
        "secret", "signing_secret", "password", "cookie",
    ]

    /// The four members every line has, which metadata cannot replace.
    private static let fixedKeys: Set<String> = ["time", "level", "message", "logger"]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadataProvider?.get() ?? [:]
        merged.merge(metadata) { _, new in new }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        var line = Self.line(time: Date(), level: event.level, message: event.message.description, label: label, metadata: merged)
        line.append("\n")
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    /// One line's JSON object, without the line break.
    static func line(time: Date, level: Logger.Level, message: String, label: String, metadata: Logger.Metadata) -> String {
        var out = "{\"time\":"
        appendString(timestamp(time), to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        out += ",\"logger\":"
        appendString(label, to: &out)
        for key in metadata.keys.sorted() {
            out += ","
            appendString(fixedKeys.contains(key) ? "meta_" + key : key, to: &out)
            out += ":"
            if redactedKeys.contains(key.lowercased()) {
                out += "\"[redacted]\""
            } else {
                appendValue(metadata[key]!, to: &out)
            }
        }
        out += "}"
        return out
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text): appendString(text, to: &out)
        case .stringConvertible(let value): appendString(value.description, to: &out)
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                appendValue(element, to: &out)
            }
            out += "]"
        case .dictionary(let members):
            out += "{"
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                if redactedKeys.contains(key.lowercased()) {
                    out += "\"[redacted]\""
                } else {
                    appendValue(members[key]!, to: &out)
                }
            }
            out += "}"
        }
    }

    /// A JSON string: quotes, backslashes and every control character escaped; U+2028 and U+2029 too, so that a line
    /// is also valid JavaScript and no reader takes them for line breaks.
    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{2028}", "\u{2029}", "\u{0}"..."\u{1F}", "\u{7F}":
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// `2026-12-08T00:04:19.123Z`.
    static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        let millis = Int((date.timeIntervalSince1970 - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let milliText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):"
            + "\(two(parts.tm_sec)).\(milliText)Z"
    }
}
