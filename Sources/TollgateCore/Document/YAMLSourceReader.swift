import Yams

/// Reads a YAML document into ``SourceNode``s through Yams' `Node` API, within ``SourceLimits``.
///
/// Yams composes nodes recursively and shares the node of an anchor with each of its aliases. So before composing,
/// a cheap scan bounds how deep the document can possibly nest (a stack overflow is a crash, not an error), and while
/// converting, every value reached through an alias counts again toward `maxNodes`, so an alias bomb is an error.
///
/// Plain scalars are resolved the YAML 1.2 way (`yes`, `on` are strings): `null`/`~`/empty, `true`/`false`, decimal
/// numbers; quoted scalars are always strings. `<<` merge keys are supported.
struct YAMLSourceReader {
    typealias Failure = JSONSourceReader.Failure

    private let text: String
    private let limits: SourceLimits
    private var nodes = 0

    init(text: String, limits: SourceLimits) {
        self.text = text
        self.limits = limits
    }

    mutating func read() throws(Failure) -> SourceNode {
        if let (line, estimate) = Self.nestingEstimate(text), estimate > limits.maxDepth * 4 {
            throw Failure(
                code: .tooDeep,
                message: "lists and mappings are nested more than \(limits.maxDepth) deep",
                location: SourcePosition(line: line, column: 1)
            )
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.failure(from: error)
        } catch {
            throw Failure(code: .syntax, message: "\(error)", location: SourcePosition(line: 1, column: 1))
        }
        guard let root else { return SourceNode(.null, at: SourcePosition(line: 1, column: 1)) }
        return try convert(root, depth: 1)
    }

    private mutating func convert(_ node: Node, depth: Int) throws(Failure) -> SourceNode {
        let location = node.mark.map { SourcePosition(line: $0.line, column: $0.column) }
        nodes += 1
        if nodes > limits.maxNodes {
            throw Failure(
                code: .tooManyNodes,
                message: "the document has more than \(limits.maxNodes) values once aliases are expanded",
                location: location ?? SourcePosition(line: 1, column: 1)
            )
        }
        switch node {
        case .scalar(let scalar):
            return SourceNode(Self.resolve(scalar), at: location)
        case .sequence(let sequence):
            try checkDepth(depth, location)
            var items: [SourceNode] = []
            items.reserveCapacity(sequence.count)
            for item in sequence {
                items.append(try convert(item, depth: depth + 1))
            }
            return SourceNode(.sequence(items), at: location)
        case .mapping(let mapping):
            try checkDepth(depth, location)
            var members: [SourceNode.Member] = []
            var merged: [SourceNode.Member] = []
            for index in mapping.indices {
                let (key, value) = mapping[index]
                let keyLocation = key.mark.map { SourcePosition(line: $0.line, column: $0.column) }
                guard case .scalar(let keyScalar) = key else {
                    throw Failure(
                        code: .wrongType,
                        message: "mapping keys must be strings, found \(Self.isSequence(key) ? "a list" : "a mapping")",
                        location: keyLocation ?? location ?? SourcePosition(line: 1, column: 1)
                    )
                }
                if keyScalar.string == "<<" && keyScalar.style == .plain {
                    merged.append(contentsOf: try mergeMembers(value, depth: depth))
                    continue
                }
                members.append(
                    SourceNode.Member(key: keyScalar.string, keyLocation: keyLocation, value: try convert(value, depth: depth + 1))
                )
            }
            let explicit = Set(members.map(\.key))
            var seen = Set<String>()
            for member in merged where !explicit.contains(member.key) && seen.insert(member.key).inserted {
                members.append(member)
            }
            return SourceNode(.mapping(members), at: location)
        }
    }

    /// The members a `<<` key brings in: a mapping, or a list of mappings (earlier ones win).
    private mutating func mergeMembers(_ value: Node, depth: Int) throws(Failure) -> [SourceNode.Member] {
        let sources: [Node]
        if case .sequence(let items) = value { sources = Array(items) } else { sources = [value] }
        var result: [SourceNode.Member] = []
        for source in sources {
            let converted = try convert(source, depth: depth)
            guard case .mapping(let members) = converted.value else {
                throw Failure(
                    code: .wrongType,
                    message: "a `<<` merge key takes a mapping or a list of mappings",
                    location: converted.location ?? SourcePosition(line: 1, column: 1)
                )
            }
            result.append(contentsOf: members)
        }
        return result
    }

    private static func isSequence(_ node: Node) -> Bool {
        if case .sequence = node { return true }
        return false
    }

    private func checkDepth(_ depth: Int, _ location: SourcePosition?) throws(Failure) {
        guard depth <= limits.maxDepth else {
            throw Failure(
                code: .tooDeep,
                message: "lists and mappings are nested more than \(limits.maxDepth) deep",
                location: location ?? SourcePosition(line: 1, column: 1)
            )
        }
    }

    static func resolve(_ scalar: Node.Scalar) -> SourceNode.Value {
        let string = scalar.string
        guard scalar.style == .plain else { return .string(string) }
        switch string {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .number(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .number(-.infinity)
        case ".nan", ".NaN", ".NAN": return .number(.nan)
        default: break
        }
        if let number = CanonicalNumber.parseDecimal(string) { return .number(number) }
        return .string(string)
    }

    /// An upper bound on how deep the document nests, and the line where it is reached, from a scan that needs no
    /// recursion: flow brackets outside quotes and comments, plus twice the number of open indentation levels plus the
    /// `- ` indicators that open a line (`- - - x` nests three lists on one line).
    static func nestingEstimate(_ text: String) -> (line: Int, estimate: Int)? {
        var flow = 0
        var indents: [Int] = []
        var best: (line: Int, estimate: Int)?
        var lineNumber = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var cursor = line.startIndex
            var indent = 0
            while cursor < line.endIndex && line[cursor] == UInt8(ascii: " ") {
                indent += 1
                cursor = line.index(after: cursor)
            }
            if cursor == line.endIndex || line[cursor] == UInt8(ascii: "#") { continue }
            if flow == 0 {
                while let last = indents.last, last >= indent { indents.removeLast() }
                indents.append(indent)
            }
            var dashes = 0
            while cursor < line.endIndex, line[cursor] == UInt8(ascii: "-") || line[cursor] == UInt8(ascii: "?") {
                let next = line.index(after: cursor)
                guard next == line.endIndex || line[next] == UInt8(ascii: " ") else { break }
                dashes += 1
                cursor = next
                while cursor < line.endIndex && line[cursor] == UInt8(ascii: " ") { cursor = line.index(after: cursor) }
            }
            var quote: UInt8? = nil
            var lineMaxFlow = flow
            var previous: UInt8 = UInt8(ascii: " ")
            while cursor < line.endIndex {
                let byte = line[cursor]
                if let open = quote {
                    if byte == open { quote = nil }
                } else {
                    switch byte {
                    case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = byte
                    case UInt8(ascii: "["), UInt8(ascii: "{"):
                        flow += 1
                        lineMaxFlow = max(lineMaxFlow, flow)
                    case UInt8(ascii: "]"), UInt8(ascii: "}"): flow = max(0, flow - 1)
                    case UInt8(ascii: "#") where previous == UInt8(ascii: " "): cursor = line.index(before: line.endIndex)
                    default: break
                    }
                }
                previous = byte
                cursor = line.index(after: cursor)
            }
            let estimate = 2 * indents.count + dashes + 1 + lineMaxFlow
            if estimate > (best?.estimate ?? 0) { best = (lineNumber, estimate) }
        }
        return best
    }

    private static func failure(from error: YamlError) -> Failure {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let message = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
            return Failure(code: .syntax, message: message, location: SourcePosition(line: mark.line, column: mark.column))
        case .reader(let problem, _, _, _):
            return Failure(code: .syntax, message: problem, location: SourcePosition(line: 1, column: 1))
        default:
            return Failure(code: .syntax, message: "\(error)", location: SourcePosition(line: 1, column: 1))
        }
    }
}
