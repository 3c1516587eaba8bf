import Foundation

/// Reading a policy or configuration file into located nodes, with the checks both make before decoding it: its size,
/// its encoding and its syntax, each refused as a ``SourceValidationError`` that says where.
///
/// ```swift
/// let root = try SourceDocument.read(text, fileName: "stripe.yaml", format: nil, limits: .default, kind: "policies")
/// ```
enum SourceDocument {
    /// Reads JSON or YAML into located nodes, within the limits. `kind` names the files in messages ("policies",
    /// "configuration files").
    static func read(
        _ text: String,
        fileName: String,
        format: SourceFormat?,
        limits: SourceLimits,
        kind: String
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
    static func text(
        _ data: Data, fileName: String, limits: SourceLimits, kind: String, allowed: String? = nil
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

    /// In the order of the file: by line and column, those without a place last, otherwise as found.
    static func sorted(_ diagnostics: [SourceDiagnostic]) -> [SourceDiagnostic] {
        diagnostics.enumerated().sorted { lhs, rhs in
            let l = lhs.element.location.map { ($0.line, $0.column) } ?? (Int.max, Int.max)
            let r = rhs.element.location.map { ($0.line, $0.column) } ?? (Int.max, Int.max)
            if l != r { return l < r }
            return lhs.offset < rhs.offset
        }.map(\.element)
    }
}
