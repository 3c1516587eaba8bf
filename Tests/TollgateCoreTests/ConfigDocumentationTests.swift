import Foundation
import Testing

@testable import TollgateCore

@Suite("Gateway configuration: documentation")
struct ConfigDocumentationTests {
    func documentation() throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/configuration.md")
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test func everyErrorCodeAConfigurationProducesHasATableRow() throws {
        let text = try documentation()
        let codes = Set(ConfigLoaderTests.cases.map(\.code)).union([.fileTooLarge, .tooDeep, .tooManyNodes])
        for code in codes {
            #expect(text.contains("| `\(code.rawValue)` |"), "docs/configuration.md has no table row for \(code.rawValue)")
        }
    }

    @Test func everyKeyIsDocumented() throws {
        let text = try documentation()
        let keys =
            GatewayConfigDecoder.rootKeys.filter { $0 != "logging" && $0 != "limits" } + GatewayConfigDecoder.serverKeys
            + GatewayConfigDecoder.agentKeys
            + GatewayConfigDecoder.loggingKeys.map { "logging.\($0)" } + GatewayConfigDecoder.limitKeys.map { "limits.\($0)" }
        for key in keys {
            #expect(text.contains("| `\(key)` |"), "docs/configuration.md has no table row for \(key)")
        }
    }
}
