import Testing

@testable import TollgateServer

/// How the gateway reads an agent's key from `Authorization`: the one thing between a request and an agent identity.
@Suite struct BearerKeyTests {
    @Test func theSchemeIsReadInAnyCaseAndSpacesAroundTheKeyAreLeftOut() {
        #expect(MCPRoutes.bearerKey("Bearer tg_abc") == "tg_abc")
        #expect(MCPRoutes.bearerKey("bearer tg_abc") == "tg_abc")
        #expect(MCPRoutes.bearerKey("BEARER tg_abc") == "tg_abc")
        #expect(MCPRoutes.bearerKey("bEaReR   tg_abc \t ") == "tg_abc")
        #expect(MCPRoutes.bearerKey("Bearer \ttg_abc") == "tg_abc")
        #expect(MCPRoutes.bearerKey("Bearer tg abc") == "tg abc", "inner spaces are part of the key (which then matches no agent)")
    }

    @Test(arguments: [
        "", "Bearer", "Bearer ", "Bearer    ", "Bearer \t", "Basic dGc6YWJj", "Bearertg_abc", "Bearer\ttg_abc", "Bearer\u{0}tg_abc",
        "Béarer tg_abc", "Token tg_abc", " Bearer tg_abc", "Bear", "\u{FEFF}Bearer tg_abc",
    ])
    func anythingElseHasNoKey(_ header: String) {
        #expect(MCPRoutes.bearerKey(header) == nil, "\(header.debugDescription)")
    }

    @Test func aHugeHeaderIsReadWithoutTrouble() {
        let key = String(repeating: "k", count: 64 * 1024)
        #expect(MCPRoutes.bearerKey("Bearer " + key) == key)
        #expect(MCPRoutes.bearerKey(String(repeating: " ", count: 64 * 1024)) == nil)
    }
}
