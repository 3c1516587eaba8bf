/// A regular expression for the `regex` condition operator, matched in time linear in the subject.
///
/// Compiled once when the policy loads into a Thompson automaton and run by simulating every state at once, so
/// `(a+)+$` against `aaaa…b` costs the same as `a+$`: no backtracking, no catastrophic cases. The syntax is the
/// common subset of RE2, Go and ICU: literals, `.`, `[a-z]`, `[^…]`, `\d \w \s \D \W \S`, escapes, `^`, `$`,
/// `(…)`, `(?:…)`, `|`, `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` (lazy `?` suffixes are accepted; they do not change whether
/// a string matches). Back-references, look-around and flags are refused at load time. Matching searches the whole
/// string (anchor with `^…$`).
struct PolicyRegex: Sendable, Hashable {
    /// The longest pattern accepted, in characters.
    static let maxPatternLength = 1000
    /// The most automaton states a pattern may compile to (`{n,m}` copies its operand).
    static let maxProgramSize = 2000
    /// The most state × character steps one match may take; past it the condition fails closed.
    static let maxSteps = 20_000_000

    enum CompileError: Error, Equatable {
        case syntax(String)
        case tooComplex(String)
    }

    let pattern: String
    fileprivate let program: [Instruction]

    init(_ pattern: String) throws(CompileError) {
        guard pattern.unicodeScalars.count <= Self.maxPatternLength else {
            throw .tooComplex("the pattern is longer than \(Self.maxPatternLength) characters")
        }
        var parser = Parser(Array(pattern.unicodeScalars))
        let tree = try parser.parse()
        var compiler = Compiler()
        try compiler.emit(tree)
        compiler.program.append(.match)
        self.pattern = pattern
        self.program = compiler.program
    }

    static func == (lhs: PolicyRegex, rhs: PolicyRegex) -> Bool { lhs.pattern == rhs.pattern }
    func hash(into hasher: inout Hasher) { hasher.combine(pattern) }

    /// Whether the pattern matches somewhere in `subject`; `nil` when matching would take more than ``maxSteps``.
    func matches(_ subject: String) -> Bool? {
        let scalars = Array(subject.unicodeScalars)
        guard scalars.count.multipliedReportingOverflow(by: program.count).partialValue <= Self.maxSteps,
            scalars.count < Self.maxSteps
        else { return nil }
        var machine = Machine(program: program)
        return machine.run(scalars)
    }
}

// MARK: - Syntax tree

private indirect enum RegexNode {
    case empty
    case scalar(Unicode.Scalar)
    case set(CharacterSet)
    case any
    case start
    case end
    case concat([RegexNode])
    case alternate([RegexNode])
    case repeatRange(RegexNode, min: Int, max: Int?)
}

/// A set of Unicode scalar ranges, possibly negated.
private struct CharacterSet: Hashable {
    var ranges: [ClosedRange<UInt32>]
    var negated: Bool

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        var found = false
        for range in ranges where range.contains(value) {
            found = true
            break
        }
        return found != negated
    }

    static let digit = CharacterSet(ranges: [48...57], negated: false)
    static let word = CharacterSet(ranges: [48...57, 65...90, 95...95, 97...122], negated: false)
    static let space = CharacterSet(ranges: [9...13, 32...32], negated: false)
}

private struct Parser {
    let scalars: [Unicode.Scalar]
    var index = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    typealias CompileError = PolicyRegex.CompileError

    mutating func parse() throws(CompileError) -> RegexNode {
        let node = try parseAlternation(depth: 0)
        if index < scalars.count { throw .syntax("unmatched `)` at position \(index + 1)") }
        return node
    }

    private var peek: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private mutating func parseAlternation(depth: Int) throws(CompileError) -> RegexNode {
        guard depth < 100 else { throw .tooComplex("groups are nested more than 100 deep") }
        var branches = [try parseConcatenation(depth: depth)]
        while peek == "|" {
            index += 1
            branches.append(try parseConcatenation(depth: depth))
        }
        return branches.count == 1 ? branches[0] : .alternate(branches)
    }

    private mutating func parseConcatenation(depth: Int) throws(CompileError) -> RegexNode {
        var items: [RegexNode] = []
        while let scalar = peek, scalar != "|", scalar != ")" {
            var atom = try parseAtom(depth: depth)
            atom = try parseQuantifiers(atom)
            items.append(atom)
        }
        return items.isEmpty ? .empty : (items.count == 1 ? items[0] : .concat(items))
    }

    private mutating func parseQuantifiers(_ atom: RegexNode) throws(CompileError) -> RegexNode {
        var node = atom
        var quantified = false
        while let scalar = peek {
            let range: (Int, Int?)
            switch scalar {
            case "*": range = (0, nil); index += 1
            case "+": range = (1, nil); index += 1
            case "?": range = (0, 1); index += 1
            case "{":
                guard let counted = try parseCount() else { return node }
                range = counted
            default: return node
            }
            // Like RE2: `a**` and `a{2}*` are mistakes, not patterns (group it to mean it: `(?:a*)*`).
            if quantified { throw .syntax("a quantifier cannot follow another one; use a group") }
            quantified = true
            if case .start = node { throw .syntax("`^` cannot be repeated") }
            if case .end = node { throw .syntax("`$` cannot be repeated") }
            if peek == "?" { index += 1 }  // lazy: same language
            if peek == "+" { throw .syntax("possessive quantifiers are not supported") }
            node = .repeatRange(node, min: range.0, max: range.1)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}`; `nil` (and nothing consumed) when the brace is not a count, which is then a literal.
    private mutating func parseCount() throws(CompileError) -> (Int, Int?)? {
        let start = index
        index += 1
        func number() -> Int? {
            var digits = ""
            while let scalar = peek, ("0"..."9").contains(scalar), digits.count < 6 {
                digits.unicodeScalars.append(scalar)
                index += 1
            }
            return Int(digits)
        }
        guard let low = number() else {
            index = start
            return nil
        }
        var high: Int? = low
        if peek == "," {
            index += 1
            high = number()
        }
        guard peek == "}" else {
            index = start
            return nil
        }
        index += 1
        if let high, high < low { throw .syntax("`{\(low),\(high)}` has its bounds reversed") }
        if low > 1000 || (high ?? 0) > 1000 { throw .tooComplex("repetition counts above 1000 are not allowed") }
        return (low, high)
    }

    private mutating func parseAtom(depth: Int) throws(CompileError) -> RegexNode {
        let scalar = scalars[index]
        index += 1
        switch scalar {
        case ".": return .any
        case "^": return .start
        case "$": return .end
        case "(":
            if peek == "?" {
                guard index + 1 < scalars.count, scalars[index + 1] == ":" else {
                    throw .syntax("only `(?:…)` groups are supported (no look-around, named groups or flags)")
                }
                index += 2
            }
            let inner = try parseAlternation(depth: depth + 1)
            guard peek == ")" else { throw .syntax("missing `)`") }
            index += 1
            return inner
        case "[": return .set(try parseClass())
        case "\\": return try parseEscape(inClass: false).node
        case "*", "+", "?": throw .syntax("`\(scalar)` has nothing to repeat")
        default: return .scalar(scalar)
        }
    }

    private mutating func parseEscape(inClass: Bool) throws(CompileError) -> (node: RegexNode, set: CharacterSet?) {
        guard let scalar = peek else { throw .syntax("the pattern ends with `\\`") }
        index += 1
        switch scalar {
        case "d": return (.set(.digit), .digit)
        case "w": return (.set(.word), .word)
        case "s": return (.set(.space), .space)
        case "D", "W", "S":
            var set: CharacterSet = scalar == "D" ? .digit : scalar == "W" ? .word : .space
            set.negated = true
            return (.set(set), set)
        case "n": return (.scalar("\n"), nil)
        case "t": return (.scalar("\t"), nil)
        case "r": return (.scalar("\r"), nil)
        case "f": return (.scalar("\u{0C}"), nil)
        case "v": return (.scalar("\u{0B}"), nil)
        case "0"..."9": throw .syntax("back-references are not supported")
        case "b", "B", "A", "z", "Z": throw .syntax("`\\\(scalar)` is not supported")
        default:
            if scalar.properties.isAlphabetic { throw .syntax("unknown escape `\\\(scalar)`") }
            return (.scalar(scalar), nil)
        }
    }

    private mutating func parseClass() throws(CompileError) -> CharacterSet {
        var set = CharacterSet(ranges: [], negated: false)
        if peek == "^" {
            set.negated = true
            index += 1
        }
        var first = true
        while true {
            guard let scalar = peek else { throw .syntax("missing `]`") }
            if scalar == "]" && !first {
                index += 1
                break
            }
            first = false
            var low: Unicode.Scalar
            index += 1
            if scalar == "\\" {
                let escape = try parseEscape(inClass: true)
                if let inner = escape.set {
                    if inner.negated { throw .syntax("`\\D`, `\\W` and `\\S` are not supported inside `[…]`") }
                    set.ranges += inner.ranges
                    continue
                }
                guard case .scalar(let literal) = escape.node else { continue }
                low = literal
            } else {
                low = scalar
            }
            if peek == "-", index + 1 < scalars.count, scalars[index + 1] != "]" {
                index += 1
                var high = scalars[index]
                index += 1
                if high == "\\" {
                    guard case .scalar(let literal) = try parseEscape(inClass: true).node else {
                        throw .syntax("a range cannot end in a class escape")
                    }
                    high = literal
                }
                guard low.value <= high.value else { throw .syntax("the range `\(low)-\(high)` is reversed") }
                set.ranges.append(low.value...high.value)
            } else {
                set.ranges.append(low.value...low.value)
            }
        }
        return set
    }
}

// MARK: - Program

private enum Instruction: Hashable {
    case scalar(Unicode.Scalar)
    case set(CharacterSet)
    case any
    case split(Int, Int)
    case jump(Int)
    case assertStart
    case assertEnd
    case match
}

private struct Compiler {
    var program: [Instruction] = []

    private mutating func append(_ instruction: Instruction) throws(PolicyRegex.CompileError) {
        guard program.count < PolicyRegex.maxProgramSize else {
            throw .tooComplex("the pattern compiles to more than \(PolicyRegex.maxProgramSize) states")
        }
        program.append(instruction)
    }

    mutating func emit(_ node: RegexNode) throws(PolicyRegex.CompileError) {
        switch node {
        case .empty: break
        case .scalar(let scalar): try append(.scalar(scalar))
        case .set(let set): try append(.set(set))
        case .any: try append(.any)
        case .start: try append(.assertStart)
        case .end: try append(.assertEnd)
        case .concat(let items):
            for item in items { try emit(item) }
        case .alternate(let branches):
            var jumps: [Int] = []
            for (offset, branch) in branches.enumerated() {
                if offset < branches.count - 1 {
                    let split = program.count
                    try append(.split(split + 1, 0))
                    try emit(branch)
                    jumps.append(program.count)
                    try append(.jump(0))
                    program[split] = .split(split + 1, program.count)
                } else {
                    try emit(branch)
                }
            }
            for jump in jumps { program[jump] = .jump(program.count) }
        case .repeatRange(let inner, let low, let high):
            for _ in 0..<low { try emit(inner) }
            if let high {
                var splits: [Int] = []
                for _ in low..<high {
                    splits.append(program.count)
                    try append(.split(program.count + 1, 0))
                    try emit(inner)
                }
                for split in splits { program[split] = .split(split + 1, program.count) }
            } else {
                let loop = program.count
                try append(.split(loop + 1, 0))
                try emit(inner)
                try append(.jump(loop))
                program[loop] = .split(loop + 1, program.count)
            }
        }
    }
}

/// Runs a program over a subject keeping the set of live states, one step per character.
private struct Machine {
    let program: [Instruction]
    var marks: [Int]
    var generation = 0
    var stack: [Int] = []

    init(program: [Instruction]) {
        self.program = program
        self.marks = [Int](repeating: -1, count: program.count)
    }

    /// Adds `pc` and every state reachable from it without consuming input; true if that reaches `match`.
    private mutating func add(_ pc: Int, to list: inout [Int], at position: Int, count: Int) -> Bool {
        stack.append(pc)
        while let pc = stack.popLast() {
            if marks[pc] == generation { continue }
            marks[pc] = generation
            switch program[pc] {
            case .match:
                stack.removeAll(keepingCapacity: true)
                return true
            case .jump(let target): stack.append(target)
            case .split(let first, let second):
                stack.append(second)
                stack.append(first)
            case .assertStart: if position == 0 { stack.append(pc + 1) }
            case .assertEnd: if position == count { stack.append(pc + 1) }
            case .scalar, .set, .any: list.append(pc)
            }
        }
        return false
    }

    mutating func run(_ subject: [Unicode.Scalar]) -> Bool {
        var current: [Int] = []
        var next: [Int] = []
        current.reserveCapacity(program.count)
        next.reserveCapacity(program.count)
        generation = 0
        if add(0, to: &current, at: 0, count: subject.count) { return true }
        for position in 0..<subject.count {
            let scalar = subject[position]
            generation += 1
            next.removeAll(keepingCapacity: true)
            for pc in current {
                let advances: Bool
                switch program[pc] {
                case .scalar(let expected): advances = expected == scalar
                case .set(let set): advances = set.contains(scalar)
                case .any: advances = scalar != "\n"
                default: advances = false
                }
                if advances && add(pc + 1, to: &next, at: position + 1, count: subject.count) { return true }
            }
            // Unanchored search: a match may also start at the next position.
            if add(0, to: &next, at: position + 1, count: subject.count) { return true }
            swap(&current, &next)
        }
        return false
    }
}
