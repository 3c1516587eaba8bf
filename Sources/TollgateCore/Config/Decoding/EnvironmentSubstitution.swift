/// `${NAME}` references in configuration values, replaced from the environment the caller passes.
///
/// - `${NAME}` is the variable's value; a variable that is not set is a problem, never an empty string.
/// - `${NAME:-default}` is the value, or `default` (taken literally, up to the first `}`) when the variable is unset
///   or empty.
/// - `$${` is a literal `${`; any other `$` is itself.
/// - Names are `[A-Za-z_][A-Za-z0-9_]*`; anything else after `${` is a syntax problem.
///
/// The text is scanned once from left to right and substituted values are not scanned again, so a value containing
/// `${...}` stays as it is.
struct EnvironmentSubstitution {
    /// Something wrong with one reference.
    enum Problem: Error, Equatable {
        /// `${name}` with `name` unset and no default.
        case undefined(name: String)
        /// `${` not followed by a well-formed reference; `reference` is the text from `${`, `reason` what is wrong.
        case syntax(reference: String, reason: String)
    }

    /// The text with every reference replaced.
    var value: String
    /// Whether the text held at least one `${` reference or `$${` escape.
    var substituted: Bool
    var problems: [Problem]

    init(_ text: String, environment: [String: String]) {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "$")) else {
            self.init(value: text, substituted: false, problems: [])
            return
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var problems: [Problem] = []
        var substituted = false
        var index = 0
        scanning: while index < bytes.count {
            let byte = bytes[index]
            guard byte == Self.dollar else {
                output.append(byte)
                index += 1
                continue
            }
            if Self.matches(bytes, at: index + 1, "${") {
                output.append(contentsOf: Array("${".utf8))
                substituted = true
                index += 3
                continue
            }
            guard Self.matches(bytes, at: index + 1, "{") else {
                output.append(byte)
                index += 1
                continue
            }
            substituted = true
            switch Self.reference(in: bytes, at: index) {
            case .failure(let problem):
                problems.append(problem)
                break scanning
            case .success(let reference):
                if let value = environment[reference.name], !(reference.fallback != nil && value.isEmpty) {
                    output.append(contentsOf: Array(value.utf8))
                } else if let fallback = reference.fallback {
                    output.append(contentsOf: fallback)
                } else {
                    problems.append(.undefined(name: reference.name))
                }
                index = reference.end
            }
        }
        self.init(value: String(decoding: output, as: UTF8.self), substituted: substituted, problems: problems)
    }

    private init(value: String, substituted: Bool, problems: [Problem]) {
        self.value = value
        self.substituted = substituted
        self.problems = problems
    }

    private struct Reference {
        var name: String
        var fallback: ArraySlice<UInt8>?
        /// The index just past the closing `}`.
        var end: Int
    }

    private static let dollar = UInt8(ascii: "$")

    /// Reads the reference whose `${` starts at `start`.
    private static func reference(in bytes: [UInt8], at start: Int) -> Result<Reference, Problem> {
        func failure(_ reason: String) -> Result<Reference, Problem> {
            let excerpt = bytes[start..<min(bytes.count, start + 40)]
            let closing = excerpt.firstIndex(of: UInt8(ascii: "}")).map { $0 + 1 } ?? excerpt.endIndex
            var reference = String(decoding: bytes[start..<closing], as: UTF8.self)
            if closing == excerpt.endIndex && closing < bytes.count { reference += "..." }
            return .failure(.syntax(reference: reference, reason: reason))
        }
        let nameStart = start + 2
        var index = nameStart
        guard index < bytes.count, isNameStart(bytes[index]) else {
            return failure("`${` must be followed by a variable name (a letter or `_`, then letters, digits or `_`)")
        }
        while index < bytes.count && isNameCharacter(bytes[index]) { index += 1 }
        let name = String(decoding: bytes[nameStart..<index], as: UTF8.self)
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            return .success(Reference(name: name, fallback: nil, end: index + 1))
        }
        guard matches(bytes, at: index, ":-") else {
            return failure(
                index < bytes.count
                    ? "a variable name may only hold letters, digits and `_`, and ends with `}` or `:-default}`"
                    : "the reference is not closed with `}`")
        }
        let fallbackStart = index + 2
        guard let close = bytes[fallbackStart...].firstIndex(of: UInt8(ascii: "}")) else {
            return failure("the reference is not closed with `}`")
        }
        let fallback = bytes[fallbackStart..<close]
        if fallback.indices.contains(where: { bytes[$0] == dollar && matches(bytes, at: $0 + 1, "{") }) {
            return failure("a default cannot contain `${`: references are not nested")
        }
        return .success(Reference(name: name, fallback: fallback, end: close + 1))
    }

    private static func matches(_ bytes: [UInt8], at index: Int, _ text: String) -> Bool {
        let expected = Array(text.utf8)
        guard index >= 0, index + expected.count <= bytes.count else { return false }
        return bytes[index..<index + expected.count].elementsEqual(expected)
    }

    private static func isNameStart(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || byte == UInt8(ascii: "_")
    }

    private static func isNameCharacter(_ byte: UInt8) -> Bool {
        isNameStart(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
