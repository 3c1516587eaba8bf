/// A policy or gateway configuration that cannot be used, with every problem found in it (not just the first).
public struct SourceValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var diagnostics: [SourceDiagnostic]

    public init(diagnostics: [SourceDiagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String {
        let count = diagnostics.count
        let header = "\(count) error\(count == 1 ? "" : "s") in \(diagnostics.first?.file ?? "policy")"
        return ([header] + diagnostics.map(\.description)).joined(separator: "\n")
    }
}
