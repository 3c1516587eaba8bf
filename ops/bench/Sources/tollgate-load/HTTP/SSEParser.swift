/// Reads a `text/event-stream` body as it arrives and hands back the `data` of each event it completes.
///
/// Follows the WHATWG event-stream rules that matter to an MCP client: lines end with LF, CRLF or CR; a blank line
/// ends an event; `data:` lines are joined with LF; comments (`:`) and other fields (`event`, `id`, `retry`) are
/// skipped; an event with empty data (the priming event a 2025-11-25 server may send) is not dispatched; and an
/// event left unterminated when the stream ends is dropped, as a browser or the Python SDK drops it.
///
/// ```swift
/// var parser = SSEParser()
/// parser.feed(Array("event: message\ndata: {\"id\":1}\n\n".utf8))  // [Array(#"{"id":1}"#.utf8)]
/// ```
struct SSEParser {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var lastWasCR = false

    /// Feeds the next bytes of the stream; returns the data of each event they complete, in order.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [[UInt8]] {
        var events: [[UInt8]] = []
        for byte in bytes {
            switch byte {
            case 0x0A where lastWasCR:
                lastWasCR = false
            case 0x0A, 0x0D:
                lastWasCR = byte == 0x0D
                if let event = endLine() { events.append(event) }
            default:
                lastWasCR = false
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> [UInt8]? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer {
                data.removeAll(keepingCapacity: true)
                hasData = false
            }
            return data.isEmpty ? nil : data
        }
        if line[0] == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        guard line[..<colon].elementsEqual("data".utf8) else { return nil }
        var valueStart = colon < line.endIndex ? colon + 1 : colon
        if valueStart < line.endIndex, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        if hasData { data.append(0x0A) }
        data.append(contentsOf: line[valueStart...])
        hasData = true
        return nil
    }
}
