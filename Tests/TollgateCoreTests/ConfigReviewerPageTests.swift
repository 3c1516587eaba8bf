import Foundation
import Testing

@testable import TollgateCore

@Suite("Gateway configuration: ui (the reviewer page)")
struct ConfigReviewerPageTests {
    @Test func theSessionDurationsLoadWithTheirDefaults() throws {
        let defaults = try loadConfig("listen: 127.0.0.1:1").ui
        #expect(defaults.sessionIdleTimeout == .seconds(1800))
        #expect(defaults.sessionLifetime == .seconds(43_200))
        let set = try loadConfig("ui: {session_idle_timeout: 5m, session_lifetime: 2h}").ui
        #expect(set.sessionIdleTimeout == .seconds(300))
        #expect(set.sessionLifetime == .seconds(7200))
        let seconds = try loadConfig("ui:\n  session_idle_timeout: 1s\n  session_lifetime: ${LIFE}", environment: ["LIFE": "3"]).ui
        #expect(seconds.sessionIdleTimeout == .seconds(1))
        #expect(seconds.sessionLifetime == .seconds(3))
        #expect(try loadConfig("ui:").ui == ReviewerPageSettings())
    }

    @Test func everyProblemIsReportedWithItsPath() {
        let found = configDiagnostics("ui: {session_idle_timeout: soon, session_lifetime: 31d, cookie_name: x}")
        #expect(found.first { $0.path == "ui.session_idle_timeout" }?.code == .invalidDuration)
        #expect(found.first { $0.path == "ui.session_lifetime" }?.code == .invalidNumber)
        #expect(found.first { $0.path == "ui.cookie_name" }?.code == .unknownKey)
        #expect(configDiagnostics("ui: {session_lifetime: 0}").map(\.path) == ["ui.session_lifetime"])
        #expect(configDiagnostics("ui: [1]").map(\.path) == ["ui"])
    }
}
