import Foundation
import Testing

@testable import TollgateCore

/// `servers.<name>.user` and `group`: the OS user a stdio server runs as, checked against the password and group
/// databases when the configuration loads (here a made-up machine, so the tests do not depend on this one's users).
@Suite("Gateway configuration: the user a stdio server runs as")
struct ConfigServerUserTests {
    /// A machine with the users `nobody` and `mcp`, and the groups `nogroup` and `mcp`.
    static let accounts = SystemAccounts(userExists: { ["nobody", "mcp"].contains($0) }, groupExists: { ["nogroup", "mcp"].contains($0) })

    func load(_ text: String) throws(SourceValidationError) -> GatewayConfig {
        try GatewayConfigLoader.load(
            text, fileName: "tollgate.yaml", directory: "/etc/tollgate", environment: ["RUN_AS": "mcp"], accounts: Self.accounts)
    }

    func diagnostics(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [SourceDiagnostic] {
        do {
            _ = try load(text)
            Issue.record("expected the configuration to be rejected", sourceLocation: sourceLocation)
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test func aUserAndAGroupAreKeptAsWritten() throws {
        let config = try load(
            """
            servers:
              a: {command: x, policy: p, user: nobody}
              b: {command: x, policy: p, user: "${RUN_AS}", group: nogroup}
              c: {command: x, policy: p, user: null}
            """)
        #expect(
            config.servers.map(\.upstream) == [
                .stdio(StdioUpstream(command: "x", user: "nobody")),
                .stdio(StdioUpstream(command: "x", user: "mcp", group: "nogroup")),
                .stdio(StdioUpstream(command: "x")),
            ])
    }

    @Test func theRealMachinesDatabasesAreTheDefault() throws {
        // Every Unix machine has root (uid 0) and its group.
        let config = try loadConfig("servers: {a: {command: x, policy: p, user: root, group: root}}")
        #expect(config.servers.first?.upstream == .stdio(StdioUpstream(command: "x", user: "root", group: "root")))
        #expect(configDiagnostics("servers: {a: {command: x, policy: p, user: no-such-user-4a7f}}").map(\.code) == [.invalidValue])
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var code: SourceDiagnostic.Code
        var text: String
        var path: String
        var location: SourcePosition
        var message: String
        var allowed: String

        var testDescription: String { "\(code.rawValue) at \(path): \(message)" }
    }

    static let cases: [Case] = [
        Case(
            code: .invalidValue, text: "servers:\n  s: {command: x, policy: p, user: nobodyy}", path: "servers.s.user",
            location: SourcePosition(line: 2, column: 36), message: "there is no user `nobodyy` on this machine", allowed: "getent passwd"),
        Case(
            code: .invalidValue, text: "servers:\n  s: {command: x, policy: p, user: mcp, group: staff}", path: "servers.s.group",
            location: SourcePosition(line: 2, column: 48), message: "there is no group `staff` on this machine", allowed: "getent group"),
        Case(
            code: .invalidValue, text: "servers:\n  s:\n    command: x\n    policy: p\n    user: 'a:b'", path: "servers.s.user",
            location: SourcePosition(line: 5, column: 11), message: "`a:b` is not a user name: it contains `:`", allowed: "getent passwd"),
        Case(
            code: .invalidValue, text: "servers:\n  s:\n    command: x\n    policy: p\n    user: ''", path: "servers.s.user",
            location: SourcePosition(line: 5, column: 11), message: "`` is not a user name: it is empty", allowed: "getent passwd"),
        Case(
            code: .wrongType, text: "servers:\n  s:\n    command: x\n    policy: p\n    user: 65534", path: "servers.s.user",
            location: SourcePosition(line: 5, column: 11), message: "expected a string, found a number (65534)", allowed: "a user name"),
        Case(
            code: .misplacedField, text: "servers:\n  s:\n    command: x\n    policy: p\n    group: nogroup", path: "servers.s.group",
            location: SourcePosition(line: 5, column: 5), message: "`group` only applies with `user`", allowed: "add `user: NAME`"),
        Case(
            code: .misplacedField, text: "servers:\n  s: {url: 'https://x.dev', policy: p, user: nobody}", path: "servers.s.user",
            location: SourcePosition(line: 2, column: 40), message: "`user` only applies to a server started with `command`",
            allowed: "use `command` instead of `url`"),
    ]

    @Test(arguments: cases)
    func eachErrorNamesFileLocationPathAndFix(_ expected: Case) {
        let found = diagnostics(expected.text)
        #expect(found.count == 1, "got \(found)")
        guard let diagnostic = found.first else { return }
        #expect(diagnostic.code == expected.code)
        #expect(diagnostic.file == "tollgate.yaml")
        #expect(diagnostic.path == expected.path)
        #expect(diagnostic.location == expected.location)
        #expect(diagnostic.message == expected.message)
        #expect(diagnostic.allowed?.contains(expected.allowed) == true, "allowed: \(diagnostic.allowed ?? "nil")")
        #expect(diagnostic.description.hasPrefix("tollgate.yaml:\(expected.location.line):\(expected.location.column): \(expected.path): "))
    }
}
