/// One problem found in a policy or gateway configuration file: where it is, which field, what was found and what is allowed there.
///
/// ```text
/// stripe.yaml:7:9: tools.transfer.limts: unknown key `limts` [unknown-key]
///     allowed here: action, reason, approval, limits, rules
///     did you mean `limits`?
/// ```
public struct SourceDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is. Every code is listed, with its cause and fix, in `docs/policy.md`; those a
    /// configuration file can have, in `docs/configuration.md`.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        case fileTooLarge = "file-too-large"
        case syntax
        case tooDeep = "too-deep"
        case tooManyNodes = "too-many-nodes"
        case duplicateKey = "duplicate-key"
        case unknownKey = "unknown-key"
        case wrongType = "wrong-type"
        case missingField = "missing-field"
        case invalidValue = "invalid-value"
        case invalidVersion = "invalid-version"
        case invalidNumber = "invalid-number"
        case invalidDuration = "invalid-duration"
        case invalidName = "invalid-name"
        case invalidPattern = "invalid-pattern"
        case invalidPath = "invalid-path"
        case invalidOperand = "invalid-operand"
        case invalidRegex = "invalid-regex"
        case regexTooComplex = "regex-too-complex"
        case duplicateEntry = "duplicate-entry"
        case counterConflict = "counter-conflict"
        case misplacedField = "misplaced-field"
        case emptyRule = "empty-rule"
        case invalidQuorum = "invalid-quorum"
        case holdExceedsTimeout = "hold-exceeds-timeout"
        case unsupportedImport = "unsupported-import"
    }

    public var code: Code
    /// The file name given to the loader.
    public var file: String
    /// Where the bad value starts, when the format gives it.
    public var location: SourcePosition?
    /// The path of the bad field, such as `tools.transfer.limits[0].window`; empty for the whole document.
    public var path: String
    /// What is wrong, in a sentence.
    public var message: String
    /// What is allowed at that place.
    public var allowed: String?
    /// The nearest allowed spelling, for a misspelt key or value.
    public var suggestion: String?

    public init(
        code: Code,
        file: String,
        location: SourcePosition?,
        path: String,
        message: String,
        allowed: String? = nil,
        suggestion: String? = nil
    ) {
        self.code = code
        self.file = file
        self.location = location
        self.path = path
        self.message = message
        self.allowed = allowed
        self.suggestion = suggestion
    }

    public var description: String {
        var text = file
        if let location { text += ":\(location.line):\(location.column)" }
        text += ": "
        if !path.isEmpty { text += "\(path): " }
        text += "\(message) [\(code.rawValue)]"
        if let allowed { text += "\n    allowed here: \(allowed)" }
        if let suggestion { text += "\n    did you mean `\(suggestion)`?" }
        return text
    }
}
