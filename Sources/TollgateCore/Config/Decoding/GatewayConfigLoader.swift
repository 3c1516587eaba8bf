import Foundation

/// Reads and checks the gateway's configuration file (YAML or JSON). No file I/O: the caller passes the file's contents,
/// its name (for messages), its directory (relative paths in it resolve against that) and the environment for
/// `${NAME}` references; `accounts` says which OS users and groups exist (for `servers.*.user`, default: this machine's).
///
/// Problems are reported all at once, each with file, line, column, the field's path and what is allowed there, as
/// ``SourceDiagnostic``s, so they print exactly like policy errors:
///
/// ```swift
/// do {
///     let config = try GatewayConfigLoader.load(
///         data, fileName: path, directory: (path as NSString).deletingLastPathComponent,
///         environment: ProcessInfo.processInfo.environment)
/// } catch {
///     for diagnostic in error.diagnostics { print(diagnostic) }
///     // tollgate.yaml:12:10: servers.stripe.url: `ftp://x` is not an http or https URL [invalid-value]
/// }
/// ```
public enum GatewayConfigLoader {
    /// Parses and checks a configuration. The format is `format`, else the one the file name or content implies.
    public static func load(
        _ text: String,
        fileName: String,
        directory: String,
        environment: [String: String],
        format: SourceFormat? = nil,
        limits: SourceLimits = .default,
        accounts: SystemAccounts = .system
    ) throws(SourceValidationError) -> GatewayConfig {
        let root = try SourceDocument.read(text, fileName: fileName, format: format, limits: limits, kind: Self.kind)
        var decoder = GatewayConfigDecoder(
            file: fileName, directory: directory, environment: environment, limits: limits, accounts: accounts)
        let config = decoder.decodeConfig(root)
        guard let config, decoder.diagnostics.isEmpty else {
            throw SourceValidationError(diagnostics: SourceDocument.sorted(decoder.diagnostics))
        }
        return config
    }

    /// ``load(_:fileName:directory:environment:format:limits:accounts:)`` from bytes, which must be UTF-8.
    public static func load(
        _ data: Data,
        fileName: String,
        directory: String,
        environment: [String: String],
        format: SourceFormat? = nil,
        limits: SourceLimits = .default,
        accounts: SystemAccounts = .system
    ) throws(SourceValidationError) -> GatewayConfig {
        let text = try SourceDocument.text(data, fileName: fileName, limits: limits, kind: Self.kind, allowed: "a YAML or JSON file in UTF-8")
        return try load(
            text, fileName: fileName, directory: directory, environment: environment, format: format, limits: limits, accounts: accounts)
    }

    /// How messages name these files.
    static let kind = "configuration files"
}
