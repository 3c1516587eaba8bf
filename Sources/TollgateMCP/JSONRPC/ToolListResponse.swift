import TollgateCore

/// What an agent's `tools/list` shows of one tool instead of the definition the upstream listed (tool definition
/// pinning, docs/inventory.md): another definition (the accepted one), or nothing.
public enum ToolPresentation: Sendable, Hashable {
    case replaced([UInt8])
    case omitted
}

/// A `tools/list` response read for the relay: the tools it names, and the same response with hidden tools cut out.
///
/// Hidden tools are removed by cutting their elements out of the `tools` array; every other byte of the response
/// (the remaining tools, their key order, numbers, unknown fields) is kept as the upstream wrote it.
public struct ToolListResponse: Sendable {
    /// Every tool in the page, as the upstream described it (hidden ones included).
    public let tools: [ToolDescriptor]
    /// Every named tool object in the page, its bytes as the upstream sent them (every member): what the inventory hashes.
    public let definitions: [(name: String, bytes: [UInt8])]
    /// `result.nextCursor`, when the upstream has more pages.
    public let nextCursor: String?
    private let message: JSONRPCMessage
    private let elements: [(name: String?, range: Range<Int>)]
    private let arrayRange: Range<Int>?

    /// Reads the `result.tools` of a response; `nil` when the message is not a successful response or has no list.
    public init?(_ message: JSONRPCMessage) {
        guard message.kind == .response, let resultRange = message.resultRange else { return nil }
        let scanner = JSONScanner(message.bytes)
        guard let members = try? scanner.members(of: resultRange),
            let toolsRange = members.first(where: { $0.key == "tools" })?.value,
            let elementRanges = try? scanner.elements(of: toolsRange)
        else { return nil }
        var tools: [ToolDescriptor] = []
        var definitions: [(name: String, bytes: [UInt8])] = []
        var elements: [(name: String?, range: Range<Int>)] = []
        for range in elementRanges {
            let name = (try? scanner.member("name", of: range)).flatMap { $0 }.flatMap { scanner.string(at: $0) }
            elements.append((name, range))
            let json = try? JSONValue(parsing: String(decoding: message.bytes[range], as: UTF8.self))
            if let name { definitions.append((name, Array(message.bytes[range]))) }
            let hash = ToolDefinition.hash(of: Array(message.bytes[range]))
            if let json, var tool = try? ToolDescriptor(json: json) {
                tool.definitionHash = hash
                tools.append(tool)
            } else if let name {
                var tool = ToolDescriptor(name: name)
                tool.definitionHash = hash
                tools.append(tool)
            }
        }
        self.message = message
        self.tools = tools
        self.definitions = definitions
        self.elements = elements
        self.arrayRange = toolsRange
        self.nextCursor = members.first(where: { $0.key == "nextCursor" }).flatMap { scanner.string(at: $0.value) }
    }

    /// The response without the tools for which `isHidden` holds, and with the definitions of `presented` in place of
    /// the listed ones (``ToolPresentation``); the original bytes when nothing is cut or replaced.
    public func bytes(hiding isHidden: (String) -> Bool, presenting presented: [String: ToolPresentation] = [:]) -> [UInt8] {
        var changed = false
        var kept: [ArraySlice<UInt8>] = []
        for element in elements {
            guard let name = element.name else {
                kept.append(message.bytes[element.range])
                continue
            }
            if isHidden(name) {
                changed = true
                continue
            }
            switch presented[name] {
            case nil: kept.append(message.bytes[element.range])
            case .omitted: changed = true
            case .replaced(let bytes):
                changed = true
                kept.append(bytes[...])
            }
        }
        guard changed, let arrayRange else { return message.bytes }
        var out: [UInt8] = []
        out.reserveCapacity(message.bytes.count)
        out.append(contentsOf: message.bytes[..<(arrayRange.lowerBound + 1)])
        for (index, element) in kept.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: element)
        }
        out.append(contentsOf: message.bytes[(arrayRange.upperBound - 1)...])
        return out
    }
}
