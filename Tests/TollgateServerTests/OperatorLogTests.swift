import Foundation
import TollgateCore
import TollgateTestSupport
import XCTest

/// What an operator's log collector reads: `logging.format: json` lines of a real gateway, one per call with the
/// call's facts and never its arguments or a key; text lines that a hostile tool name cannot forge; and CLI commands
/// whose output is the answer alone.
final class OperatorLogTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    func fixture(policy: String) throws -> GatewayUnderTest.Server {
        .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: policy)
    }

    /// The gateway's log lines, each parsed as a JSON object, once `done` holds for them (or 10 s passed).
    func jsonLines(_ gateway: GatewayUnderTest, until done: ([JSONValue]) -> Bool) async throws -> [JSONValue] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let lines = gateway.log.split(separator: "\n").filter { !$0.isEmpty }
            var parsed: [JSONValue] = []
            for line in lines {
                let value = try JSONValue(parsing: String(line))
                XCTAssertNotNil(value.objectValue, "every line is one JSON object: \(line)")
                parsed.append(value)
            }
            if done(parsed) || ContinuousClock.now > deadline { return parsed }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func testJSONLogsHaveOneLinePerCallWithItsFactsAndNeverItsArgumentsOrAKey() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": try fixture(policy: "version: \"1\"\ndefault: allow\ntools:\n  transfer: {action: deny, reason: no transfers}\n")],
            extraConfig: "logging: {level: info, format: json}\n", environment: ["TOLLGATE_LOG_LEVEL": ""])
        defer { gateway.stop() }
        let key = try XCTUnwrap(gateway.keys["agent-a"])
        let wire = Wire(port: gateway.port, server: "fixture", key: key)
        let session = try wire.initialize()
        let marker = "argument-value-\(UUID().uuidString)"
        let echoed = wire.call("echo", #"{"text":"\#(marker)"}"#, id: 1, session: session)
        XCTAssertEqual(echoed?["result"]?["isError"]?.boolValue, false, "\(String(describing: echoed))")
        let denied = wire.call("transfer", #"{"to":"\#(marker)","amount":5}"#, id: 2, session: session)
        XCTAssertEqual(denied?["result"]?["isError"]?.boolValue, true, "\(String(describing: denied))")

        let lines = try await jsonLines(gateway) { lines in
            lines.contains { $0["message"]?.stringValue == "tool call" } && lines.contains { $0["message"]?.stringValue == "tool call refused" }
        }
        for line in lines {
            XCTAssertNotNil(line["time"]?.stringValue, "\(line)")
            XCTAssertNotNil(line["level"]?.stringValue, "\(line)")
            XCTAssertNotNil(line["message"]?.stringValue, "\(line)")
        }
        let call = try XCTUnwrap(lines.first { $0["message"]?.stringValue == "tool call" }, gateway.log)
        XCTAssertEqual(call["level"]?.stringValue, "info")
        XCTAssertEqual(call["agent"]?.stringValue, "agent-a")
        XCTAssertEqual(call["server"]?.stringValue, "fixture")
        XCTAssertEqual(call["tool"]?.stringValue, "echo")
        XCTAssertEqual(call["session"]?.stringValue, session)
        XCTAssertEqual(call["decision"]?.stringValue, "allow")
        XCTAssertEqual(call["outcome"]?.stringValue, "success")
        XCTAssertNotNil(UUID(uuidString: call["call"]?.stringValue ?? ""), "\(call)")
        let duration = try XCTUnwrap(Double(call["duration_ms"]?.stringValue ?? ""), "\(call)")
        XCTAssertTrue(duration > 0 && duration < 30_000, "\(duration)")
        XCTAssertTrue(call["time"]?.stringValue?.hasSuffix("Z") == true, "UTC: \(call)")

        let refused = try XCTUnwrap(lines.first { $0["message"]?.stringValue == "tool call refused" }, gateway.log)
        XCTAssertEqual(refused["tool"]?.stringValue, "transfer")
        XCTAssertEqual(refused["decision"]?.stringValue, "deny")
        XCTAssertEqual(refused["outcome"]?.stringValue, "refused")
        XCTAssertEqual(refused["rule"]?.stringValue, "tools.transfer")
        XCTAssertNotEqual(refused["call"]?.stringValue, call["call"]?.stringValue)

        XCTAssertFalse(gateway.log.contains(marker), "no argument value is logged")
        XCTAssertFalse(gateway.log.contains("\"to\""), "no argument name is logged")
        XCTAssertFalse(gateway.log.contains(key), "no agent key is logged")
        XCTAssertFalse(gateway.log.contains(String(key.dropFirst(3).prefix(16))), "no part of the agent key is logged")
    }

    func testAHostileToolNameCannotForgeATextLogLine() async throws {
        // A hidden tool is decided and recorded (then answered as unknown), so its name, chosen by the agent, is logged.
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": try fixture(policy: "version: \"1\"\ndefault: allow\nhide: [\"no_such*\"]\n")],
            extraConfig: "logging: {level: info, format: text}\n", environment: ["TOLLGATE_LOG_LEVEL": ""])
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: try XCTUnwrap(gateway.keys["agent-a"]))
        let session = try wire.initialize()
        // Its name holds a line break that would start a forged line, and a bidi control.
        let answer = wire.call(#"no_such\nFORGED critical: all calls allowed\u202E"#, "{}", id: 1, session: session)
        XCTAssertEqual(answer?["error"]?["code"]?.doubleValue, -32602, "answered as unknown: \(String(describing: answer))")
        let deadline = ContinuousClock.now + .seconds(10)
        while !gateway.log.contains("tool call refused") && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertTrue(gateway.log.contains("tool call refused"), gateway.log.suffix(3000).description)
        for line in gateway.log.split(separator: "\n") {
            XCTAssertFalse(line.hasPrefix("FORGED"), "a forged line: \(line)")
        }
        XCTAssertTrue(gateway.log.contains(#"no_such\u000AFORGED"#), gateway.log.suffix(3000).description)
        XCTAssertFalse(gateway.log.unicodeScalars.contains("\u{202E}"), "the bidi control is shown escaped")
    }

    func testCommandsOtherThanTheGatewaysPrintTheirAnswerAlone() async throws {
        // On the embedded cluster, `events tail` starts it, grants, connects: three `info` lines it used to print.
        let directory = "/tmp/tg-quiet-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tail = try RunningProgram.run(
            RunningProgram.tollgateBinary, ["events", "tail", "-n", "1", "--format", "json", "--data-dir", directory],
            environment: ["TOLLGATE_LOG_LEVEL": "", "TOLLGATE_DATABASE_URL": ""], timeout: .seconds(120))
        XCTAssertEqual(tail.status, 0, tail.stderr)
        XCTAssertEqual(tail.stderr, "", "no log lines around the answer")
        let verbose = try RunningProgram.run(
            RunningProgram.tollgateBinary, ["events", "tail", "-n", "1", "--format", "json", "--data-dir", directory, "--log-level", "info"],
            environment: ["TOLLGATE_LOG_LEVEL": "", "TOLLGATE_DATABASE_URL": ""], timeout: .seconds(120))
        XCTAssertEqual(verbose.status, 0, verbose.stderr)
        XCTAssertEqual(verbose.stdout, tail.stdout, "the answer is the same")
        XCTAssertTrue(verbose.stderr.contains("connected to PostgreSQL"), "asked for, the log lines are there: \(verbose.stderr)")
    }
}
