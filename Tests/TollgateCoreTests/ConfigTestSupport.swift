import Foundation
import Testing

@testable import TollgateCore

/// A well-formed key hash for tests that do not care which key it is: `sha256:` and 64 times `digit`.
func exampleKeyHash(_ digit: Character = "a") -> String {
    "sha256:" + String(repeating: digit, count: 64)
}

func loadConfig(
    _ text: String,
    file: String = "tollgate.yaml",
    directory: String = "/etc/tollgate",
    environment: [String: String] = [:]
) throws -> GatewayConfig {
    try GatewayConfigLoader.load(text, fileName: file, directory: directory, environment: environment)
}

/// The diagnostics a configuration text produces; fails the test if it loads.
func configDiagnostics(
    _ text: String,
    file: String = "tollgate.yaml",
    environment: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) -> [SourceDiagnostic] {
    do {
        _ = try GatewayConfigLoader.load(text, fileName: file, directory: "/etc/tollgate", environment: environment)
        Issue.record("expected the configuration to be rejected", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.diagnostics
    }
}

/// The contents of a file in `Fixtures/config`.
func configFixture(_ name: String) throws -> String {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/config/\(name)")
    return try String(contentsOf: url, encoding: .utf8)
}
