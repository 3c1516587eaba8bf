import Foundation
import Synchronization
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Two `tollgate serve` replicas on one database behind HAProxy, configured by ops/examples/replicas/haproxy.cfg itself
/// (its three addresses replaced by free loopback ports) with the example's policy: the official `mcp` client through
/// the balancer, with sessions (stuck to one replica on `Mcp-Session-Id`) and without (spread over both); a global limit
/// exact across both; and a replica killed with SIGKILL while calls are held on it.
final class ReplicaTests: XCTestCase {
    typealias Wire = GatewayBadInputTests.Wire

    static let examples = Peers.root.appendingPathComponent("ops/examples/replicas")
    static let limit = 10

    /// Two replicas, HAProxy in front, and the fixture server's ledger of the calls that really ran.
    struct Balanced {
        let gateway: GatewayUnderTest
        let twin: (port: Int, process: RunningProgram)
        let haproxy: RunningProgram
        let port: Int
        let ledger: URL

        var url: String { "http://127.0.0.1:\(port)/mcp/pay" }
        var replicaPorts: [Int] { [gateway.port, twin.port] }
        var replicas: [RunningProgram] { [gateway.process, twin.process] }
        var key: String { gateway.key }
        var wire: Wire { Wire(port: port, server: "pay", key: key) }

        /// How many times `transfer` really ran with this amount.
        func runs(amount: Double) -> Int {
            let text = (try? String(contentsOf: ledger, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }.filter {
                $0["tool"]?.stringValue == "transfer" && $0["arguments"]?["amount"]?.doubleValue == amount
            }.count
        }

        /// A counter of one replica's `/metrics`, 0 when absent.
        func decisions(_ outcome: String, replica: Int) -> Int {
            let text = HTTPProbe.get(port: replicaPorts[replica], path: "/metrics")?.body ?? ""
            let prefix = #"tollgate_decisions_total{server="pay",outcome="\#(outcome)"} "#
            let line = text.split(separator: "\n").first { $0.hasPrefix(prefix) }
            return line.flatMap { Int(Double($0.dropFirst(prefix.count)) ?? 0) } ?? 0
        }

        /// Which replica holds a session: one answers its `ping`, the other does not know it (404).
        func holder(of session: String) -> [Int] {
            (0..<2).filter { replica in
                Wire(port: replicaPorts[replica], server: "pay", key: key).post(#"{"jsonrpc":"2.0","id":"probe","method":"ping"}"#, session: session)
                    .status == 200
            }
        }

        /// The approvals API, through the balancer.
        func api(_ method: String, _ path: String, body: String? = nil) -> (status: Int, body: JSONValue?) {
            var headers = [("Authorization", "Bearer \(gateway.tokens["alice"]!)")]
            if body != nil { headers.append(("Content-Type", "application/json")) }
            let response = HTTPProbe.request(port: port, method: method, path: path, headers: headers, body: Array((body ?? "").utf8))
            return (response?.status ?? 0, response.flatMap { try? JSONValue(parsing: $0.body) })
        }

        func pending(count: Int, timeout: Duration = .seconds(20)) async -> [JSONValue] {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let items = api("GET", "/v1/approvals?status=pending&limit=500").body?["items"]?.arrayValue ?? []
                if items.count >= count { return items }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return []
        }

        func stop() {
            haproxy.kill()
            twin.process.kill()
            gateway.stop()
            try? FileManager.default.removeItem(at: ledger)
        }
    }

    /// The example's policy, with its global limit made smaller (and its window an hour, so that a test never straddles
    /// a window's end): `echo` at most `limit` calls for everyone on both replicas; `transfer` held for approval.
    static func policy() throws -> String {
        let text = try String(contentsOf: examples.appendingPathComponent("policies/pay.yaml"), encoding: .utf8)
        let limit = "limits: [{counter: echo_rate, window: minute, max: 100, scope: global}]"
        XCTAssertTrue(text.contains(limit) && text.contains("action: require_approval"), "the example policy changed: update this test")
        return text.replacingOccurrences(of: limit, with: "limits: [{counter: echo_rate, window: hour, max: \(Self.limit), scope: global}]")
    }

    /// HAProxy from Debian's package (ops/lib/haproxy.sh installs it), or `TOLLGATE_HAPROXY`.
    static func haproxyBinary() throws -> String {
        let path = ProcessInfo.processInfo.environment["TOLLGATE_HAPROXY"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/sbin/haproxy"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw RunningProgram.Failure(
                description: "haproxy is missing at \(path): run ./ops/test, whose ops/lib/haproxy.sh installs Debian's haproxy package")
        }
        return path
    }

    func start() async throws -> Balanced {
        let haproxy = try Self.haproxyBinary()
        // Not the last 30 s of an hour: the limit's window must not end during the test (which takes about 10 s).
        let second = Int(Date().timeIntervalSince1970) % 3600
        if second > 3600 - 30 { try await Task.sleep(for: .seconds(3600 - second + 1)) }
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-replicas-\(UUID().uuidString.prefix(8)).jsonl")
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "pay": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio", "--ledger", ledger.path],
                    policy: try Self.policy())
            ],
            reviewers: ["alice": "reviewer"])
        let twin: (port: Int, process: RunningProgram)
        do { twin = try await gateway.startTwin() } catch {
            gateway.stop()
            throw error
        }
        let port = HTTPProbe.freePort()
        // The example's three addresses, outside its comments, each named once.
        var lines = try String(contentsOf: Self.examples.appendingPathComponent("haproxy.cfg"), encoding: .utf8).components(separatedBy: "\n")
        for (address, port) in [("127.0.0.1:8420", port), ("127.0.0.1:8421", gateway.port), ("127.0.0.1:8422", twin.port)] {
            let uses = lines.indices.filter { !lines[$0].trimmingCharacters(in: .whitespaces).hasPrefix("#") && lines[$0].contains(address) }
            XCTAssertEqual(uses.count, 1, "haproxy.cfg names \(address) once: update this test")
            for index in uses { lines[index] = lines[index].replacingOccurrences(of: address, with: "127.0.0.1:\(port)") }
        }
        let config = lines.joined(separator: "\n")
        let file = gateway.directory.appendingPathComponent("haproxy.cfg")
        try config.write(to: file, atomically: true, encoding: .utf8)
        let balancer = try RunningProgram(haproxy, ["-db", "-f", file.path])
        let balanced = Balanced(gateway: gateway, twin: twin, haproxy: balancer, port: port, ledger: ledger)
        guard await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(20))?.status == 200 else {
            balanced.stop()
            throw RunningProgram.Failure(
                description: "HAProxy did not answer:\n\(balancer.standardOutput.suffix(3000))\(balancer.standardError.suffix(3000))")
        }
        return balanced
    }

    /// Runs `body` on `count` threads at once.
    func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let remaining = Mutex(count)
            for index in 0..<count {
                Thread {
                    body(index)
                    if remaining.withLock({ value -> Int in
                        value -= 1
                        return value
                    }) == 0 {
                        done.resume()
                    }
                }.start()
            }
        }
    }

    static let meta =
        #""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"wire","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}"#

    /// `count` stateless `echo` calls at once through the balancer: how many were admitted, and how many limited.
    func echoFlood(_ balanced: Balanced, _ count: Int, from first: Int) async -> (admitted: Int, limited: Int, other: [String]) {
        let wire = balanced.wire
        let admitted = Mutex(0)
        let limited = Mutex(0)
        let other = Mutex([String]())
        await concurrently(count) { index in
            let id = first + index
            let body =
                #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"echo","arguments":{"text":"call \#(id)"},\#(Self.meta)}}"#
            let response = wire.post(
                body, accept: "application/json", extra: [("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")])
            let result = (try? JSONValue(parsing: response.body))?["result"]
            switch result?["isError"]?.boolValue {
            case false: admitted.withLock { $0 += 1 }
            case true where result?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("rate limit") == true:
                limited.withLock { $0 += 1 }
            default: other.withLock { $0.append("\(response.status) \(response.body)") }
            }
        }
        return (admitted.withLock { $0 }, limited.withLock { $0 }, other.withLock { $0 })
    }

    /// `add`, which the policy allows without a limit.
    static func add(_ a: Int) -> JSONValue { ["op": "call_tool", "name": "add", "arguments": ["a": .number(Double(a)), "b": 1], "timeout": 30] }

    static func transfer(_ amount: Double) -> JSONValue {
        ["op": "call_tool", "name": "transfer", "arguments": ["amount": .number(amount), "to": "bob"], "timeout": 60]
    }

    /// The official client through the balancer, in the background.
    func client(_ balanced: Balanced, python: String? = nil, mode: String?, steps: [JSONValue]) -> Task<Peers.ClientRun, any Error> {
        let python = Result { try python ?? Peers.python2() }
        let (url, key) = (balanced.url, balanced.key)
        return Task.detached { try Peers.runClient(python: try python.get(), url: url, key: key, mode: mode, steps: .array(steps)) }
    }

    func testTheOfficialClientWorksThroughTheBalancerAndAGlobalLimitIsExactAcrossBothReplicas() async throws {
        let balanced = try await start()
        defer { balanced.stop() }
        // The example gateway configurations are valid as they are.
        for name in ["gateway-1.yaml", "gateway-2.yaml"] {
            let check = try RunningProgram.run(
                RunningProgram.tollgateBinary, ["config", "check", "--config", Self.examples.appendingPathComponent(name).path])
            XCTAssertEqual(check.status, 0, "\(name): \(check.stdout) \(check.stderr)")
        }

        // Sessions: every request of a session reaches the replica that made it (a session unknown to the other replica
        // is a 404, which ends mcp 1.x's session and is fatal to mcp 2.x's), so six calls in a row succeed.
        let steps = [["op": "list_tools"]] + (1...6).map { Self.add($0) }
        for (python, mode) in [(try Peers.python2(), "legacy"), (try Peers.python1(), nil)] {
            let run = try await client(balanced, python: python, mode: mode, steps: steps).value
            XCTAssertEqual(run.status, 0, run.description)
            XCTAssertEqual(run.connected?["handshake"]?.stringValue, "initialize", run.description)
            XCTAssertEqual(run.steps.count, 7, run.description)
            for step in run.steps.dropFirst() {
                XCTAssertEqual(step["result"]?["isError"]?.boolValue, false, run.description)
            }
        }
        // Both replicas took turns at the two sessions' initialize, each kept its own session's six calls: 6 and 6.
        let perReplica = (0..<2).map { balanced.decisions("allow", replica: $0) }
        XCTAssertTrue(
            perReplica.reduce(0, +) == 12 && perReplica.allSatisfy { $0 % 6 == 0 }, "each session's calls stayed on one replica: \(perReplica)")
        // On the wire: a session made through the balancer lives on exactly one replica, and its requests reach it.
        let wire = balanced.wire
        let session = try wire.initialize()
        XCTAssertEqual(balanced.holder(of: session).count, 1, "one replica holds the session")
        for id in 0..<4 {
            let reply = wire.call("add", #"{"a":\#(id),"b":1}"#, id: 10 + id, session: session)
            XCTAssertEqual(reply?["result"]?["isError"]?.boolValue, false, "\(String(describing: reply))")
        }

        // Stateless (2026-07-28, no session): the client's requests go to either replica.
        let before = (0..<2).map { balanced.decisions("allow", replica: $0) }
        let stateless = try await client(balanced, mode: "2026-07-28", steps: (1...6).map { Self.add($0) }).value
        XCTAssertEqual(stateless.status, 0, stateless.description)
        XCTAssertEqual(stateless.connected?["protocolVersion"]?.stringValue, "2026-07-28", stateless.description)
        XCTAssertEqual(stateless.steps.filter { $0["result"]?["isError"]?.boolValue == false }.count, 6, stateless.description)
        let spread = (0..<2).map { balanced.decisions("allow", replica: $0) - before[$0] }
        XCTAssertEqual(spread.reduce(0, +), 6)
        XCTAssertTrue(spread.allSatisfy { $0 > 0 }, "stateless calls went to both replicas: \(spread)")

        // A global limit of 10 calls an hour, and 24 calls at once through the balancer, spread over both replicas:
        // exactly 10 are admitted, whichever replica decided them.
        let allowed = (0..<2).map { balanced.decisions("allow", replica: $0) }
        let flood = await echoFlood(balanced, 24, from: 100)
        XCTAssertEqual(flood.other, [], "every call got an answer")
        XCTAssertEqual(flood.admitted, Self.limit, "exactly the limit was admitted")
        XCTAssertEqual(flood.limited, 24 - Self.limit)
        let limited = (0..<2).map { balanced.decisions("limited", replica: $0) }
        let admitted = (0..<2).map { balanced.decisions("allow", replica: $0) - allowed[$0] }
        XCTAssertEqual(admitted.reduce(0, +), Self.limit)
        XCTAssertTrue(zip(admitted, limited).allSatisfy { $0 + $1 > 0 }, "both replicas decided some: admitted \(admitted), limited \(limited)")
        try await assertRateWindowsEqualTheLog(balanced.gateway)
    }

    func testAReplicaKilledWhileCallsAreHeldLosesItsSessionsButNotItsApprovalRequestsOrItsCountedCalls() async throws {
        let balanced = try await start()
        defer { balanced.stop() }
        // Calls counted on both replicas before the kill.
        let early = await echoFlood(balanced, 4, from: 100)
        XCTAssertEqual(early.admitted, 4, "\(early)")

        // Two agents' sessions through the balancer, each with a call held for approval.
        let first = client(balanced, mode: "legacy", steps: [Self.transfer(11)])
        let firstPending = await balanced.pending(count: 1)
        XCTAssertEqual(firstPending.count, 1, balanced.gateway.log)
        let second = client(balanced, mode: "legacy", steps: [Self.transfer(12)])
        let pending = await balanced.pending(count: 2)
        XCTAssertEqual(pending.count, 2, balanced.gateway.log)
        var held: [Double: (id: String, replica: Int)] = [:]
        for request in pending {
            let id = try XCTUnwrap(request["id"]?.stringValue)
            let amount = try XCTUnwrap(balanced.api("GET", "/v1/approvals/\(id)").body?["arguments"]?["amount"]?.doubleValue)
            let session = try XCTUnwrap(request["session"]?.stringValue)
            let holders = balanced.holder(of: session)
            XCTAssertEqual(holders.count, 1, "one replica holds the session of the call held for \(amount)")
            held[amount] = (id, try XCTUnwrap(holders.first))
        }
        let (transfer11, transfer12) = (try XCTUnwrap(held[11]), try XCTUnwrap(held[12]))

        // SIGKILL the replica holding the first call: no shutdown of any kind.
        let victim = transfer11.replica
        let survivor = 1 - victim
        balanced.replicas[victim].signal(SIGKILL)
        XCTAssertEqual(try balanced.replicas[victim].wait(timeout: .seconds(10)), 128 + SIGKILL)
        let killed = ContinuousClock.now

        // The agent's held request fails with its connection; nothing ran.
        let lost = try await first.value
        // (mcp 2.3: -32603 "Server returned an error response", HAProxy's 502 for the connection that broke.)
        XCTAssertTrue(lost.step(0)?["ok"]?.boolValue == false || lost.fatal != nil, "the held call's connection died with its replica: \(lost)")
        XCTAssertEqual(balanced.runs(amount: 11), 0)

        // Its approval request is still pending in PostgreSQL (asked through the balancer, which the surviving replica
        // answers), and so is the other one.
        let still = await balanced.pending(count: 2)
        XCTAssertEqual(Set(still.compactMap { $0["id"]?.stringValue }), [transfer11.id, transfer12.id], "both requests are still pending")

        // HAProxy's health checks (/readyz every second, two failures) take the dead replica out.
        let down = "tollgate/gateway-\(victim + 1) is DOWN"
        while !balanced.haproxy.standardOutput.contains(down), ContinuousClock.now < killed + .seconds(5) {
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertTrue(
            balanced.haproxy.standardOutput.contains(down), "HAProxy took the dead replica out:\n\(balanced.haproxy.standardOutput.suffix(2000))")
        print("ReplicaTests: HAProxy marked the killed replica down \(ContinuousClock.now - killed) after SIGKILL")

        // The agent reconnects through the balancer: a new session, on the surviving replica, whose identical retry
        // joins the pending request and is held.
        let heldBefore = balanced.decisions("require_approval", replica: survivor)
        let retry = client(balanced, mode: "legacy", steps: [Self.transfer(11)])
        let deadline = ContinuousClock.now + .seconds(20)
        while balanced.decisions("require_approval", replica: survivor) == heldBefore, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertEqual(balanced.decisions("require_approval", replica: survivor), heldBefore + 1, "the retry is held on the survivor")
        let requested = try await balanced.gateway.events(type: ApprovalRequested.type)
        XCTAssertEqual(requested.count, 2, "the retry made no new request")

        // One approval (through the balancer) releases the retry: the tool runs once.
        XCTAssertEqual(balanced.api("POST", "/v1/approvals/\(transfer11.id)/approve", body: "{}").status, 200)
        let released = try await retry.value
        XCTAssertEqual(released.status, 0, released.description)
        XCTAssertEqual(released.step(0)?["result"]?["structuredContent"]?["status"]?.stringValue, "transferred", released.description)
        XCTAssertEqual(balanced.runs(amount: 11), 1)
        let shown = balanced.api("GET", "/v1/approvals/\(transfer11.id)").body
        XCTAssertEqual(shown?["consumed"]?.boolValue, true)

        // The other call: held on the survivor, its client gets its result; held on the dead replica, nobody waits for it
        // and it does not run on approval.
        XCTAssertEqual(balanced.api("POST", "/v1/approvals/\(transfer12.id)/approve", body: "{}").status, 200)
        let other = try await second.value
        if transfer12.replica == survivor {
            XCTAssertEqual(other.step(0)?["result"]?["structuredContent"]?["status"]?.stringValue, "transferred", other.description)
            XCTAssertEqual(balanced.runs(amount: 12), 1)
        } else {
            XCTAssertNotEqual(other.step(0)?["ok"]?.boolValue, true, other.description)
            try await Task.sleep(for: .milliseconds(500))
            XCTAssertEqual(balanced.runs(amount: 12), 0)
        }

        // The dead replica's admitted calls still count: 4 before, so 6 of 12 now.
        let late = await echoFlood(balanced, 12, from: 200)
        XCTAssertEqual(late.other, [], "every call got an answer")
        XCTAssertEqual(late.admitted, Self.limit - 4, "exactly the rest of the limit was admitted")
        try await assertRateWindowsEqualTheLog(balanced.gateway)
    }
}
