import Foundation

/// Reads, validates and compiles policies. No I/O: callers pass the file's contents and its name (for messages).
///
/// ```swift
/// let text = try String(contentsOfFile: path, encoding: .utf8)
/// do {
///     let policy = try PolicyLoader.load(text, fileName: path)
/// } catch let error as SourceValidationError {
///     for diagnostic in error.diagnostics { print(diagnostic) }   // every problem, with file:line:column
/// }
/// ```
public enum PolicyLoader {
    /// Parses and validates a policy, and compiles it for evaluation.
    public static func load(
        _ text: String,
        fileName: String,
        format: SourceFormat? = nil,
        limits: SourceLimits = .default
    ) throws(SourceValidationError) -> CompiledPolicy {
        let policy = try parse(text, fileName: fileName, format: format, limits: limits)
        return try CompiledPolicy(policy, fileName: fileName)
    }

    /// ``load(_:fileName:format:limits:)`` from bytes, which must be UTF-8.
    public static func load(
        _ data: Data,
        fileName: String,
        format: SourceFormat? = nil,
        limits: SourceLimits = .default
    ) throws(SourceValidationError) -> CompiledPolicy {
        try load(
            try SourceDocument.text(data, fileName: fileName, limits: limits, kind: kind), fileName: fileName, format: format, limits: limits)
    }

    /// Parses and validates a policy into its model, reporting every problem at once.
    public static func parse(
        _ text: String,
        fileName: String,
        format: SourceFormat? = nil,
        limits: SourceLimits = .default
    ) throws(SourceValidationError) -> Policy {
        let root = try SourceDocument.read(text, fileName: fileName, format: format, limits: limits, kind: kind)
        var decoder = PolicyDecoder(file: fileName)
        let policy = decoder.decodePolicy(root)
        guard let policy, decoder.diagnostics.isEmpty else {
            throw SourceValidationError(diagnostics: SourceDocument.sorted(decoder.diagnostics))
        }
        return policy
    }

    /// How messages name these files.
    static let kind = "policies"
}
