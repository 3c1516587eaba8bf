/// Reads a `text/event-stream` body incrementally, as the HTML standard's event-stream parser does: lines end with
/// CR, LF or CRLF; `data:` lines accumulate; a blank line dispatches the event; comments (`:`) are ignored.
///
/// ```swift
/// var parser = SSEParser()
/// for event in parser.feed(Array("event: endpoint\ndata: /messages?id=1\n\n".utf8)) { print(event.name, event.data) }
/// ```
public struct SSEParser: Sendable {
    /// One dispatched event.
    public struct Event: Sendable, Equatable {
        /// `event:`, `message` when absent.
        public var name: String
        public var data: [UInt8]
        public var id: String?
    }

    /// Events larger than this are dropped (and reported by ``droppedOversized``).
    public let maxEventBytes: Int
    public private(set) var droppedOversized = 0
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var name: String?
    private var id: String?
    private var lastWasCR = false
    private var oversized = false

    public init(maxEventBytes: Int = 16 << 20) {
        self.maxEventBytes = maxEventBytes
    }

    /// Feeds bytes; returns the events they complete.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [Event] where Bytes.Element == UInt8 {
        var events: [Event] = []
        for byte in bytes {
            if byte == 0x0A, lastWasCR {
                lastWasCR = false
                continue
            }
            lastWasCR = byte == 0x0D
            if byte == 0x0A || byte == 0x0D {
                if let event = endOfLine() { events.append(event) }
            } else if line.count + data.count <= maxEventBytes {
                line.append(byte)
            } else {
                oversized = true
            }
        }
        return events
    }

    private mutating func endOfLine() -> Event? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer {
                data.removeAll(keepingCapacity: true)
                hasData = false
                name = nil
                oversized = false
            }
            if oversized {
                droppedOversized += 1
                return nil
            }
            guard hasData else { return nil }
            return Event(name: name ?? "message", data: data, id: id)
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let field: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            field = line[...]
            value = []
        }
        switch String(decoding: field, as: UTF8.self) {
        case "data":
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        case "event":
            name = String(decoding: value, as: UTF8.self)
        case "id":
            if !value.contains(0) { id = String(decoding: value, as: UTF8.self) }
        default:
            break
        }
        return nil
    }
}
