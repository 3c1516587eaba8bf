import Foundation
import TollgateCore
import TollgateMCP
import TollgateSystem
import TollgateTestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The stdio servers a real `tollgate serve` starts, seen from outside (`/proc`) and from inside (the fixture's `run`
/// tool, a shell in front of the fixture): they start with default signal dispositions and no blocked signal, they and
/// whatever they started die with the gateway even when it is killed with SIGKILL, they live as long as it does, and a
/// flood on their stderr reaches the log rate-limited.
final class ChildLifetimeTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    static let allow = "version: \"1\"\ndefault: allow\n"
    /// The gateway's log at info, whatever the environment of the test says.
    static let environment = ["TOLLGATE_LOG_LEVEL": "info"]

    /// A stdio server that is `/bin/sh -c script` and then the fixture (`"$0" "$@"` or `exec "$0" "$@"` in `script`).
    static func shellInFront(_ script: String) throws -> GatewayUnderTest.Server {
        .stdio(
            command: "/bin/sh", arguments: ["-c", script, try Peers.python2(), Peers.fixtureServer, "--transport", "stdio"],
            policy: allow)
    }

    // MARK: - /proc

    struct ProcessEntry: CustomStringConvertible {
        var pid: pid_t
        var ppid: pid_t
        var group: pid_t
        var state: Character
        var name: String
        var description: String { "\(pid) (\(name)) state \(state) parent \(ppid) group \(group)" }
    }

    /// A file of `/proc`, read to its end (its size says 0).
    static func readProc(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Every process on the machine, from `/proc/PID/stat`.
    static func processes() -> [ProcessEntry] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name in
            guard let pid = pid_t(name), let stat = readProc("/proc/\(name)/stat"), let open = stat.firstIndex(of: "("),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, let ppid = pid_t(fields[1]), let group = pid_t(fields[2]) else { return nil }
            return ProcessEntry(
                pid: pid, ppid: ppid, group: group, state: fields[0].first ?? "?", name: String(stat[stat.index(after: open)..<close]))
        }
    }

    /// `SigIgn` and `SigBlk` (hex masks) from the text of a `/proc/PID/status`.
    static func signalMasks(_ status: String) -> (ignored: UInt64?, blocked: UInt64?) {
        func mask(_ field: String) -> UInt64? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
            return UInt64(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return (mask("SigIgn"), mask("SigBlk"))
    }

    static func bit(_ signal: Int32) -> UInt64 { 1 << UInt64(signal - 1) }

    static func waitForFile(_ path: String, timeout: Duration = .seconds(20)) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("SigBlk") { return text }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    // MARK: - Signals

    func testAChildStartsWithDefaultSignalDispositionsAndNoBlockedSignal() async throws {
        let statusFile = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-child-status-\(UUID().uuidString)").path
        defer { unlink(statusFile) }
        // The shell in front of the fixture writes its own masks, as it got them from the gateway, before it becomes the
        // fixture; with builtins only, since the shell blocks every signal while it starts a program.
        let script = #"while read -r k v; do case $k in SigIgn:|SigBlk:) echo "$k $v";; esac; done < /proc/$$/status > "$1"; shift; exec "$0" "$@""#
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "fixture": .stdio(
                    command: "/bin/sh", arguments: ["-c", script, try Peers.python2(), statusFile, Peers.fixtureServer, "--transport", "stdio"],
                    policy: Self.allow)
            ],
            environment: Self.environment)
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()

        // The gateway ignores SIGPIPE (a write to a dead child's pipe must fail, not kill it), so a child would inherit it.
        let gatewayMasks = Self.signalMasks(Self.readProc("/proc/\(gateway.process.pid)/status") ?? "")
        let gatewayIgnored = try XCTUnwrap(gatewayMasks.ignored)
        XCTAssertNotEqual(gatewayIgnored & Self.bit(SIGPIPE), 0, "the gateway ignores SIGPIPE, which makes this test mean something")

        let written = await Self.waitForFile(statusFile)
        let child = try XCTUnwrap(written, "the server's shell wrote its signal masks")
        let masks = Self.signalMasks(child)
        XCTAssertEqual(masks.ignored, 0, "no signal is ignored in the child (the gateway ignores \(String(gatewayIgnored, radix: 16))): \(child)")
        XCTAssertEqual(masks.blocked, 0, "no signal is blocked in the child: \(child)")

        // And from inside the fixture: a program it runs (Python restores only SIGPIPE and SIGXFSZ for it) ignores and
        // blocks nothing either.
        let run = ChildUserTests.run(["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"], on: wire, session: session, id: 2)
        XCTAssertEqual(run.status, 0, run.stderr)
        let inner = Self.signalMasks(run.stdout)
        XCTAssertEqual(inner.ignored, 0, run.stdout)
        XCTAssertEqual(inner.blocked, 0, run.stdout)
    }

    // MARK: - Dying with the gateway

    /// Twenty sessions, each a server whose shell started a helper (`sleep 300 &`), runs the fixture, and would sleep
    /// 300 s more after it: SIGKILL of the gateway leaves none of them, nor anything in their process groups, within 5 s.
    func testSIGKILLOfTheGatewayWithTwentyStdioSessionsLeavesNoChildWithinFiveSeconds() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": try Self.shellInFront(#"sleep 300 & "$0" "$@"; sleep 300"#)], environment: Self.environment)
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        for index in 0..<20 {
            let session = try wire.initialize()
            XCTAssertEqual(
                wire.call("echo", #"{"text":"hi"}"#, id: 2 + index, session: session)?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue,
                "hi")
        }

        let gatewayPID = gateway.process.pid
        let children = Self.processes().filter { $0.ppid == gatewayPID }
        let groups = Set(children.map(\.group)).subtracting([getpgrp(), gatewayPID])
        var watched = Self.processes().filter { groups.contains($0.group) }
        XCTAssertGreaterThanOrEqual(children.count, 20, "a child per session: \(children)")
        XCTAssertGreaterThanOrEqual(watched.filter { $0.name == "sleep" }.count, 20, "each server's helper runs: \(watched)")
        let watchedPIDs = Set(watched.map(\.pid) + children.map(\.pid))
        defer {
            // Whatever survived a failing run.
            for group in groups { kill(-group, SIGKILL) }
        }

        let killed = ContinuousClock.now
        gateway.process.signal(SIGKILL)
        var survivors: [ProcessEntry] = watched
        while ContinuousClock.now - killed < .seconds(10) {
            survivors = Self.processes().filter { (watchedPIDs.contains($0.pid) || groups.contains($0.group)) && $0.state != "Z" }
            if survivors.isEmpty { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let lastGone = ContinuousClock.now - killed
        watched = survivors
        print("ChildLifetimeTests figure: \(watchedPIDs.count) processes of \(children.count) children; the last gone \(lastGone) after SIGKILL")
        XCTAssertEqual(watched.count, 0, "alive \(lastGone) after the gateway's SIGKILL: \(watched)")
        XCTAssertLessThan(lastGone, .seconds(5))
    }

    /// A child's parent-death signal fires when the *thread* that started it ends; the gateway's pool threads come and
    /// go (an idle one ends after about 5 s), so children started across many tasks, with idle pauses longer than that
    /// between them, must all still be the same processes after calls from many tasks, with no restart in the log.
    func testChildrenLiveAsLongAsTheGatewayWhateverThreadStartedThem() async throws {
        let gateway = try await GatewayUnderTest.start(
            servers: ["fixture": .stdio(command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.allow)],
            environment: Self.environment)
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        var sessions: [String] = []
        var pids: [String: Int] = [:]
        func childPID(_ session: String, id: Int) -> Int? {
            let run = ChildUserTests.run(["sh", "-c", "echo $PPID"], on: wire, session: session, id: id)
            return Int(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        for round in 0..<2 {
            // New sessions, started from whichever threads serve them now, after the pool went idle.
            let started: [String] = try (0..<3).map { _ in try wire.initialize() }
            for session in started { pids[session] = childPID(session, id: 100 + round) }
            sessions += started
            let all = sessions
            DispatchQueue.concurrentPerform(iterations: 30) { index in
                _ = wire.call("slow", #"{"seconds":0.05}"#, id: 1000 + index, session: all[index % all.count])
            }
            try await Task.sleep(for: .seconds(7))
        }
        for (index, session) in sessions.enumerated() {
            let before = try XCTUnwrap(pids[session], "the child of session \(index) answered")
            XCTAssertEqual(childPID(session, id: 500 + index), before, "session \(index) still talks to the child it started with")
            XCTAssertEqual(kill(pid_t(before), 0), 0, "child \(before) is alive")
        }
        XCTAssertFalse(gateway.log.contains("upstream server was killed by signal"), gateway.log)
    }

    private final class Started: @unchecked Sendable {
        var child: SpawnedProcess?
        var error: String?
    }

    /// The trap itself, without a gateway: a child with a parent-death signal, started when a thread that then ends asks
    /// for it, is still running after that thread has gone (Linux signals when the starting *thread* ends).
    func testAChildStartedForAThreadThatEndsLivesOn() throws {
        let (program, arguments) = try XCTUnwrap(ParentDeath.command("/bin/sleep", ["30"]), "setpriv is installed")
        let started = Started()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do { started.child = try Spawn.start(program, arguments, newProcessGroup: true) } catch { started.error = "\(error)" }
            usleep(300_000)  // the child has set its parent-death signal by now
            done.signal()
        }
        thread.start()
        done.wait()
        let child = try XCTUnwrap(started.child, started.error ?? "")
        defer {
            child.signal(SIGKILL)
            _ = child.waitForExit()
        }
        usleep(500_000)  // the thread has ended
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child.pid, &status, WNOHANG), 0, "the child still runs (status \(status))")
    }

    /// The race: a child whose parent is not the process named as the one it must die with (as after that process died
    /// before the signal was set) exits at once with 137, without running the program.
    func testAChildWhoseParentIsAlreadyGoneExitsAtOnce() throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-orphan-\(UUID().uuidString)").path
        let (program, arguments) = try XCTUnwrap(ParentDeath.command("/usr/bin/touch", [marker], parent: 1), "setpriv is installed")
        let child = try Spawn.start(program, arguments)
        XCTAssertEqual(child.waitForExit(), 137)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the program never ran")
        let (same, sameArguments) = try XCTUnwrap(ParentDeath.command("/usr/bin/touch", [marker]))
        XCTAssertEqual(try Spawn.start(same, sameArguments).waitForExit(), 0, "with the right parent it runs")
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker))
        unlink(marker)
    }

    // MARK: - Stderr

    func testAFloodOnAChildsStderrReachesTheLogRateLimited() async throws {
        // A 5,000-byte line, then 3,000 short lines as fast as the shell writes them, then the fixture.
        let script = #"""
            head -c 5000 /dev/zero | tr '\0' x >&2; echo >&2
            i=0; while [ $i -lt 3000 ]; do echo "flood line $i" >&2; i=$((i+1)); done
            exec "$0" "$@"
            """#
        let gateway = try await GatewayUnderTest.start(servers: ["fixture": try Self.shellInFront(script)], environment: Self.environment)
        defer { gateway.stop() }
        let wire = Wire(port: gateway.port, server: "fixture", key: gateway.key)
        let session = try wire.initialize()
        XCTAssertEqual(
            wire.call("echo", #"{"text":"hi"}"#, id: 2, session: session)?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue, "hi")
        try await Task.sleep(for: .seconds(1.5))
        // One more line after the flood: it is logged, after the count of the lines that were not.
        // (Written to the fixture's own stderr: what `run` runs has its stderr captured.)
        _ = ChildUserTests.run(["sh", "-c", "echo 'after the flood' > /proc/$PPID/fd/2"], on: wire, session: session, id: 3)
        try await Task.sleep(for: .seconds(0.5))

        let log = gateway.log
        let lines = log.split(separator: "\n")
        let flood = lines.filter { $0.contains("flood line ") }
        let suppressed = lines.filter { $0.contains("lines of stderr suppressed") }
        let counted = suppressed.compactMap { line in
            line.components(separatedBy: "… ").last?.split(separator: " ").first.flatMap { Int($0) }
        }.reduce(0, +)
        print("ChildLifetimeTests figure: of 3,001 stderr lines, \(flood.count + 1) logged, \(counted) counted as suppressed")
        XCTAssertGreaterThan(flood.count, 0, "the first lines are logged")
        XCTAssertLessThanOrEqual(flood.count, 3 * StderrRateLimit.defaultLinesPerSecond, "a flood is cut to 20 lines a second")
        XCTAssertFalse(suppressed.isEmpty, "the lines left out are counted in the log")
        XCTAssertGreaterThanOrEqual(flood.count + counted, 3000, "every line is logged or counted: \(suppressed)")
        XCTAssertTrue(log.contains("upstream stderr: after the flood"), "a line after the flood is logged")
        // The long line is logged cut, saying so.
        XCTAssertTrue(log.contains(String(repeating: "x", count: 2048) + " … (line cut at 2048 bytes)"), "the 5,000-byte line is cut")
        XCTAssertFalse(log.contains(String(repeating: "x", count: 2049)))
    }

    func testTheStderrLimitLogsTwentyLinesASecondAndCountsTheRest() {
        var limit = StderrRateLimit()
        let start = ContinuousClock.now
        let first = (0..<25).map { limit.admit(at: start + .milliseconds($0)) }
        XCTAssertEqual(first.filter { $0 != .suppress }.count, 20)
        XCTAssertEqual(first[0], .log(suppressedBefore: 0))
        XCTAssertEqual(limit.admit(at: start + .milliseconds(999)), .suppress)
        XCTAssertEqual(limit.admit(at: start + .seconds(1)), .log(suppressedBefore: 6), "a new second, after the six left out")
        XCTAssertEqual(limit.finish(), 0)
        XCTAssertEqual(limit.text(of: Array(repeating: UInt8(ascii: "y"), count: 3000)).count, 2048 + " … (line cut at 2048 bytes)".count)
        XCTAssertEqual(limit.text(of: Array("short".utf8)), "short")
    }
}
