import Foundation
import Logging
import TollgateCore
import XCTest

@testable import TollgateServer

/// ``ConfigReloader`` on a real file, in-process (no gateway): what a reload puts in force, which agents' sessions it
/// ends, what it keeps on an error, and what it reports as needing a restart. The gateway around it is in
/// `ConfigReloadTests`.
final class ConfigReloaderUnitTests: XCTestCase {
    let keys = (a: AgentKey.generate(), b: AgentKey.generate(), c: AgentKey.generate())

    func file(_ agents: [(String, String)], extra: String = "") -> String {
        "agents:\n" + agents.map { "  - {id: \($0.0), key_hash: \"\(AgentKey.hash($0.1))\"}\n" }.joined() + extra
    }

    func reloader(_ text: String) throws -> (ConfigReloader, LiveConfig, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-reloader-\(UUID().uuidString.prefix(8)).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try GatewayConfigLoader.load(Data(text.utf8), fileName: path, directory: "/tmp", environment: [:])
        let live = LiveConfig(config)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return (ConfigReloader(path: path, started: config, live: live, settle: .zero, logger: logger), live, path)
    }

    /// Writes `text` and reloads: the first look sees it, the second (settle 0) applies it.
    func reload(_ reloader: ConfigReloader, _ path: String, _ text: String) async throws -> ConfigReloader.Reload? {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        _ = await reloader.reloadChanged(force: true)
        return await reloader.reloadChanged(force: true)
    }

    func testARemovedOrRekeyedAgentIsEndedAndAnAddedOneAdmitted() async throws {
        let (reloader, live, path) = try reloader(file([("agent-a", keys.a), ("agent-b", keys.b)]))
        let ended = AsyncStream.makeStream(of: Set<String>.self)
        reloader.setOnAgentsEnded { ended.continuation.yield($0) }

        let removed = try await reload(reloader, path, file([("agent-a", keys.a), ("agent-c", keys.c)]))
        XCTAssertEqual(removed?.endedAgents, ["agent-b"])
        XCTAssertNil(live.snapshot.agents.agent(forKey: keys.b))
        XCTAssertEqual(live.snapshot.agents.agent(forKey: keys.c)?.id, "agent-c")
        let rekeyed = try await reload(reloader, path, file([("agent-a", keys.b), ("agent-c", keys.c)]))
        XCTAssertEqual(rekeyed?.endedAgents, ["agent-a"])
        XCTAssertNil(live.snapshot.agents.agent(forKey: keys.a))
        ended.continuation.finish()
        var told: [Set<String>] = []
        for await agents in ended.stream { told.append(agents) }
        XCTAssertEqual(told, [["agent-b"], ["agent-a"]], "the gateway is told whose sessions to end")

        let reordered = try await reload(reloader, path, file([("agent-c", keys.c), ("agent-a", keys.b)]))
        XCTAssertEqual(reordered?.endedAgents, [], "the same agents in another order: nobody's session ends")
    }

    func testAnInvalidFileKeepsEverythingAndReportsEveryError() async throws {
        let (reloader, live, path) = try reloader(file([("agent-a", keys.a), ("agent-b", keys.b)]))
        let broken = file([("agent-a", keys.a), ("agent-a", keys.c)], extra: "limitz: 1\nwebhooks: [{name: x}]\n")
        let result = try await reload(reloader, path, broken)
        XCTAssertGreaterThanOrEqual(result?.errors.count ?? 0, 3, "\(String(describing: result))")
        XCTAssertTrue(result?.errors.contains { $0.contains("limitz") } == true)
        XCTAssertTrue(result?.errors.contains { $0.contains("agents[1].id") } == true)
        XCTAssertTrue(result?.errors.contains { $0.contains("webhooks[0]") } == true)
        XCTAssertEqual(result?.endedAgents, [])
        XCTAssertEqual(live.snapshot.agents.agent(forKey: keys.b)?.id, "agent-b", "the agents in force stay")
        let again = await reloader.reloadChanged(force: true)
        XCTAssertNil(again, "the same broken content is reported once")

        let unreadable = try await reload(reloader, path, "agents: []\n" + "#" + String(repeating: "x", count: 1 << 20))
        XCTAssertEqual(unreadable?.errors.count, 1)
        XCTAssertTrue(unreadable?.errors.first?.contains("more than 1048576 bytes") == true, "\(String(describing: unreadable))")
        XCTAssertEqual(live.snapshot.agents.agent(forKey: keys.a)?.id, "agent-a")
    }

    func testWhatOnlyARestartAppliesIsNamed() async throws {
        let (reloader, live, path) = try reloader(file([("agent-a", keys.a)]))
        let result = try await reload(
            reloader, path,
            file([("agent-a", keys.a)], extra: "listen: 127.0.0.1:9999\ntracing: {endpoint: \"http://127.0.0.1:4318\"}\nlimits: {max_sessions: 3}\n"))
        XCTAssertEqual(result?.needsRestart, ["listen", "limits", "tracing"])
        XCTAssertEqual(result?.errors, [])
        XCTAssertEqual(live.snapshot.agents.agent(forKey: keys.a)?.id, "agent-a")
        XCTAssertEqual(ConfigReloader.restartKeys(GatewayConfig(), GatewayConfig(agents: [AgentConfig(id: "x", keyHash: AgentKey.hash(keys.a))])), [])
    }
}
