import Foundation
import Synchronization
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

@testable import TollgateServer

/// `commit: async` (docs/gateway.md, "When a decision is on disk"): PostgreSQL is killed with SIGKILL under load, then
/// started again. Every call the upstream ran whose decision the log lacks was decided within the stated window before
/// the kill; no call is in the log twice; and with `commit: durable` (the default) the log lacks none.
final class AsyncCommitTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    /// The most a crash of PostgreSQL can take of asynchronously committed decisions: three times `wal_writer_delay`
    /// (PostgreSQL's default 200 ms, which the embedded cluster keeps).
    static let window = 0.6

    final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }

    struct Run {
        var ranNotLogged: [(text: String, time: Double)]
        var ran: Int
        var logged: Int
        var duplicates: Int
        var killedAt: Double
        var ranJustBeforeKill: Int
    }

    func crashUnderLoad(commit: String) async throws -> Run {
        let cluster = try await OutageOutcomeTests.OwnCluster.start()
        defer { cluster.remove() }
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("async-ledger-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: ledger) }
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fx": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path],
                    policy: "version: \"1\"\ndefault: allow\n", extra: "    commit: \(commit)\n")
            ],
            database: cluster.runtime)
        defer { gateway.stop() }

        // Four agents' sessions call in a loop, each call with its own text, until told to stop.
        let stop = StopFlag()
        let wire = Wire(port: gateway.port, server: "fx", key: gateway.key)
        let workers = (0..<4).map { worker in
            Task.detached {
                guard let session = try? wire.initialize() else { return 0 }
                var sent = 0
                while !stop.value.load(ordering: .relaxed) {
                    _ = wire.call("echo", #"{"text":"w\#(worker)-\#(sent)"}"#, id: sent + 10, session: session, timeout: .seconds(5))
                    sent += 1
                }
                return sent
            }
        }
        try await Task.sleep(for: .seconds(3))
        let postmaster = try String(contentsOf: cluster.cluster.dataDirectory.appendingPathComponent("postmaster.pid"), encoding: .utf8)
            .split(separator: "\n").first.flatMap { Int32($0) }
        let pid = try XCTUnwrap(postmaster)
        let killedAt = Date().timeIntervalSince1970
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        try await Task.sleep(for: .seconds(1))
        stop.value.store(true, ordering: .relaxed)
        for worker in workers { _ = await worker.value }
        // Its processes gone, PostgreSQL recovers from its WAL at the next start.
        for _ in 0..<100 where kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(50)) }
        try? FileManager.default.removeItem(at: cluster.cluster.dataDirectory.appendingPathComponent("postmaster.pid"))
        try cluster.cluster.start()

        let ran = ((try? String(contentsOf: ledger, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONValue(parsing: String($0))
        }.compactMap { line -> (String, Double)? in
            guard let text = line["arguments"]?["text"]?.stringValue, let time = line["time"]?.doubleValue else { return nil }
            return (text, time)
        }
        var logged: [String: Int] = [:]
        for event in try await gateway.events(type: ToolCallDecided.type) {
            let decided = try EventCoding.decode(ToolCallDecided.self, from: event.data)
            if decided.tool == "echo", let text = decided.arguments?["text"]?.stringValue { logged[text, default: 0] += 1 }
        }
        return Run(
            ranNotLogged: ran.filter { logged[$0.0] == nil }.map { (text: $0.0, time: $0.1) }, ran: ran.count, logged: logged.count,
            duplicates: logged.values.filter { $0 > 1 }.count, killedAt: killedAt,
            ranJustBeforeKill: ran.filter { $0.1 <= killedAt && $0.1 > killedAt - 0.3 }.count)
    }

    func testAfterPostgresIsKilledUnderLoadAnAsyncDecisionIsLostOnlyWithinTheWindowAndADurableOneNever() async throws {
        let durable = try await crashUnderLoad(commit: "durable")
        XCTAssertGreaterThan(durable.ran, 100, "under load")
        XCTAssertGreaterThan(durable.ranJustBeforeKill, 0, "calls ran up to the kill")
        XCTAssertEqual(durable.ranNotLogged.map(\.text), [], "durable: every call the upstream ran is in the log")
        XCTAssertEqual(durable.duplicates, 0)

        let async = try await crashUnderLoad(commit: "async")
        XCTAssertGreaterThan(async.ran, 100, "under load")
        XCTAssertGreaterThan(async.ranJustBeforeKill, 0, "calls ran up to the kill")
        XCTAssertEqual(async.duplicates, 0, "no call is in the log twice")
        for lost in async.ranNotLogged {
            XCTAssertGreaterThanOrEqual(
                lost.time, async.killedAt - Self.window,
                "\(lost.text) ran \(async.killedAt - lost.time) s before the kill, and the log lacks its decision")
        }
        print(
            "commit: async: \(async.ran) calls ran, \(async.logged) decisions in the log after the crash, \(async.ranNotLogged.count) ran "
                + "without one (all within \(Self.window) s of the kill); durable: \(durable.ran) ran, none without")
    }

    func testTheCommitModeIsCheckedAndBadValuesAreErrorsAtTheirPath() throws {
        func load(_ extra: String) throws(SourceValidationError) -> GatewayConfig {
            try GatewayConfigLoader.load(
                "servers:\n  fx:\n    command: /bin/true\n    policy: p.yaml\n" + extra, fileName: "g.yaml", directory: "/tmp", environment: [:])
        }
        let plain = try load("")
        XCTAssertEqual(plain.servers.first?.commitChoice.mode(for: "echo"), .durable, "durable unless asked")
        let chosen = try load("    commit: async\n    commit_by_tool: {transfer: durable, \"get_*\": async, \"get_secret\": durable}\n")
        let choice = try XCTUnwrap(chosen.servers.first?.commitChoice)
        XCTAssertEqual(choice.mode(for: "echo"), .async)
        XCTAssertEqual(choice.mode(for: "transfer"), .durable)
        XCTAssertEqual(choice.mode(for: "get_secret"), .durable, "an exact name wins over a glob")
        XCTAssertTrue(choice.anyAsync)
        XCTAssertFalse(CommitChoice(default: .durable, tools: ["x": .durable]).anyAsync)
        for (extra, path) in [
            ("    commit: sometimes\n", "servers.fx.commit"), ("    commit: [async]\n", "servers.fx.commit"),
            ("    commit_by_tool: {echo: later}\n", "servers.fx.commit_by_tool.echo"), ("    commit_by_tool: [echo]\n", "servers.fx.commit_by_tool"),
            ("    commit_by_tool: {\"\(String(repeating: "t", count: 201))\": async}\n", "servers.fx.commit_by_tool"),
        ] {
            XCTAssertThrowsError(try load(extra)) { error in XCTAssertTrue("\(error)".contains(path), "\(extra): \(error)") }
        }
    }
}
