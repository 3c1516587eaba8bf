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
        try load(try decodeText(data, fileName: fileName, limits: limits), fileName: fileName, format: format, limits: limits)
    }

    /// Parses and validates a policy into its model, reporting every problem at once.
    public static func parse(
        _ text: String,
        fileName: String,
        format: SourceFormat? = nil,
        limits: SourceLimits = .default
    ) throws(SourceValidationError) -> Policy {
        let root = try readDocument(text, fileName: fileName, format: format, limits: limits)
        var decoder = PolicyDecoder(file: fileName)
        let policy = decoder.decodePolicy(root)
        guard let policy, decoder.diagnostics.isEmpty else {
            throw SourceValidationError(diagnostics: sorted(decoder.diagnostics))
        }
        return policy
    }

    /// Reads JSON or YAML into located nodes, within the limits. `kind` names the files in messages ("policies").
    static func readDocument(
        _ text: String,
        fileName: String,
        format: SourceFormat?,
        limits: SourceLimits,
        kind: String = "policies"
    ) throws(SourceValidationError) -> SourceNode {
        try checkSize(text.utf8.count, fileName: fileName, limits: limits, kind: kind)
        do {
            switch format ?? SourceFormat.detect(fileName: fileName, text: text) {
            case .json:
                var reader = JSONSourceReader(text: text, limits: limits)
                return try reader.read()
            case .yaml:
                var reader = YAMLSourceReader(text: text, limits: limits)
                return try reader.read()
            }
        } catch {
            throw SourceValidationError(diagnostics: [
                SourceDiagnostic(code: error.code, file: fileName, location: error.location, path: "", message: error.message)
            ])
        }
    }

    /// The bytes as UTF-8 text, within the size limit; `allowed` says what the file should be when it is not UTF-8.
    static func decodeText(
        _ data: Data, fileName: String, limits: SourceLimits, kind: String = "policies", allowed: String? = nil
    ) throws(SourceValidationError) -> String {
        try checkSize(data.count, fileName: fileName, limits: limits, kind: kind)
        guard let text = String(data: data, encoding: .utf8) else {
            throw SourceValidationError(diagnostics: [
                SourceDiagnostic(code: .syntax, file: fileName, location: nil, path: "", message: "the file is not valid UTF-8", allowed: allowed)
            ])
        }
        return text
    }

    /// Refuses a file larger than the limit, before anything reads it.
    static func checkSize(_ size: Int, fileName: String, limits: SourceLimits, kind: String) throws(SourceValidationError) {
        guard size > limits.maxBytes else { return }
        throw SourceValidationError(diagnostics: [
            SourceDiagnostic(
                code: .fileTooLarge,
                file: fileName,
                location: nil,
                path: "",
                message: "the file is \(size) bytes; \(kind) are limited to \(limits.maxBytes) bytes",
                allowed: "at most \(limits.maxBytes) bytes"
            )
        ])
    }

    static func sorted(_ diagnostics: [SourceDiagnostic]) -> [SourceDiagnostic] {
        diagnostics.enumerated().sorted { lhs, rhs in
            let l = lhs.element.location.map { ($0.line, $0.column) } ?? (Int.max, Int.max)
            let r = rhs.element.location.map { ($0.line, $0.column) } ?? (Int.max, Int.max)
            if l != r { return l < r }
            return lhs.offset < rhs.offset
        }.map(\.element)
    }
}
