import Foundation
import Testing

@testable import TollgateCore

@Suite("Gateway configuration: hostile input")
struct ConfigHostileInputTests {
    @Test func oversizedFilesAreRefusedBeforeParsing() {
        let text = "listen: '" + String(repeating: "x", count: 2 << 20) + "'"
        let found = configDiagnostics(text)
        #expect(found.map(\.code) == [.fileTooLarge])
        #expect(found.first?.message == "the file is 2097162 bytes; configuration files are limited to 1048576 bytes")
        do {
            _ = try GatewayConfigLoader.load(Data(text.utf8), fileName: "t.yaml", directory: "/", environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.map(\.code) == [.fileTooLarge])
        }
    }

    @Test func customSourceLimitsApply() {
        do {
            _ = try GatewayConfigLoader.load(
                "allowed_origins: [[[a]]]", fileName: "t.yaml", directory: "/", environment: [:], limits: SourceLimits(maxDepth: 2))
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.map(\.code) == [.tooDeep])
        }
    }

    @Test(arguments: [1000, 100_000])
    func deeplyNestedDocumentsAreAnError(depth: Int) {
        let json = "{\"servers\": " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        #expect(configDiagnostics(json, file: "t.json").map(\.code) == [.tooDeep])
        let yaml = "servers: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(configDiagnostics(yaml).map(\.code) == [.tooDeep])
        let dashes = "agents:\n" + String(repeating: "- ", count: depth) + "x\n"
        #expect(configDiagnostics(dashes).map(\.code) == [.tooDeep])
    }

    @Test func tenThousandServersLoadQuicklyInOrder() throws {
        var text = "servers:\n"
        for index in 0..<10_000 { text += "  s\(index): {command: c, policy: p\(index).yaml}\n" }
        let clock = ContinuousClock()
        var config = GatewayConfig()
        let elapsed = try clock.measure { config = try loadConfig(text) }
        #expect(config.servers.count == 10_000)
        #expect(config.servers.last?.name == "s9999")
        #expect(config.servers.last?.policyPath == "/etc/tollgate/p9999.yaml")
        #expect(elapsed < .seconds(20))
    }

    @Test func tenThousandBadServersAreAllReportedQuickly() {
        var text = "servers:\n"
        for index in 0..<10_000 { text += "  S\(index): {comand: c}\n" }
        let clock = ContinuousClock()
        var found: [SourceDiagnostic] = []
        let elapsed = clock.measure { found = configDiagnostics(text) }
        #expect(found.count == 30_000)
        #expect(elapsed < .seconds(20))
    }

    @Test func binaryGarbageIsAnErrorNotACrash() {
        var generator = SplitMix64(seed: 42)
        for length in [1, 7, 100, 4096, 100_000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(throws: SourceValidationError.self) {
                _ = try GatewayConfigLoader.load(Data(bytes), fileName: "t.yaml", directory: "/", environment: [:])
            }
            let printable = String(decoding: bytes.map { $0 % 95 + 32 }, as: UTF8.self)
            _ = try? loadConfig(printable)
            _ = try? loadConfig("{" + printable, file: "t.json")
        }
    }

    @Test func nonUTF8IsASyntaxError() {
        let bytes: [UInt8] = Array("listen: '".utf8) + [0xFF, 0xFE, 0xC3] + Array("'\n".utf8)
        do {
            _ = try GatewayConfigLoader.load(Data(bytes), fileName: "t.yaml", directory: "/", environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.map(\.code) == [.syntax])
            #expect(error.diagnostics.first?.message == "the file is not valid UTF-8")
        }
    }

    @Test func nulBytesAreRefused() {
        #expect(configDiagnostics("listen: 127.0.0.1:8080\u{0}\n").map(\.code) == [.syntax])
        #expect(configDiagnostics("{\"listen\": \"a\u{0}\"}", file: "t.json").map(\.code) == [.syntax])
        #expect(configDiagnostics(#"{"servers": {"s": {"command": "c\u0000", "policy": "p"}}}"#, file: "t.json").map(\.code) == [.invalidValue])
        #expect(configDiagnostics(#"servers: {s: {command: c, policy: "p\0"}}"#).map(\.code) == [.invalidValue])
        #expect(configDiagnostics(#"servers: {s: {command: c, policy: p, args: ["a\0b"]}}"#).map(\.code) == [.invalidValue])
        #expect(configDiagnostics(#"data_directory: "\0""#).map(\.code) == [.invalidValue])
        #expect(configDiagnostics("database: '${D}'", environment: ["D": "host=a\u{0}"]).map(\.code) == [.invalidValue])
    }

    @Test func anAliasBombIsRefusedQuickly() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            text += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        text += "allowed_origins: *a9\n"
        let clock = ContinuousClock()
        var found: [SourceDiagnostic] = []
        let elapsed = clock.measure { found = configDiagnostics(text) }
        #expect(found.map(\.code) == [.tooManyNodes])
        #expect(elapsed < .seconds(5))
    }

    @Test func aFewAliasesAreFine() throws {
        let config = try loadConfig(
            """
            servers:
              a: &server {command: c, policy: p.yaml, env: {TZ: UTC}}
              b: *server
              c: {<<: *server, command: d}
            """)
        #expect(config.servers.map(\.name) == ["a", "b", "c"])
        #expect(config.servers[0].upstream == config.servers[1].upstream)
        #expect(config.servers[2].upstream == .stdio(StdioUpstream(command: "d", environment: ["TZ": "UTC"])))
    }

    @Test func hugeStringsGiveShortMessages() {
        let huge = String(repeating: "x", count: 900_000)
        let cases = [
            "servers: {\(huge): {command: c, policy: p}}",
            "servers: {s: {url: 'https://\(huge)', policy: p}}",
            "listen: '\(huge)'",
            "allowed_origins: ['\(huge)']",
            "agents: [{id: a, key_hash: '\(huge)'}]",
            "database: '${\(huge)}'",
            "logging: {level: '\(huge)'}",
        ]
        for text in cases {
            let found = configDiagnostics(text)
            #expect(found.count == 1)
            #expect((found.first?.description.count ?? 0) < 1000, "\(found.first?.description.prefix(200) ?? "")")
        }
    }

    @Test func hugeSubstitutionsAreBounded() {
        let references = String(repeating: "${A}", count: 200_000)
        let found = configDiagnostics("database: 'x=\(references)'", environment: ["A": String(repeating: "y", count: 100)])
        #expect(found.map(\.code) == [.invalidValue])
        #expect(found.first?.message.contains("larger than 4194304 bytes") == true)
        let many = "servers:\n" + (0..<10).map { "  s\($0): {command: '${A}', policy: p}" }.joined(separator: "\n")
        let budget = configDiagnostics(many, environment: ["A": String(repeating: "z", count: 1_000_000)])
        #expect(budget.map(\.code) == [.invalidValue], "the budget error is reported once")
    }

    @Test func nonMappingDocumentsAreWrongType() {
        #expect(configDiagnostics("[1, 2]").map(\.code) == [.wrongType])
        #expect(configDiagnostics("just a string").map(\.code) == [.wrongType])
        #expect(configDiagnostics("---\na: 1\n---\nb: 2").map(\.code) == [.syntax])
        #expect(configDiagnostics("? [a, b]\n: c").map(\.code) == [.wrongType])
    }
}

/// A small seeded generator, so the garbage is the same on every run.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
