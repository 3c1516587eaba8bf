import Foundation
import Logging
import NIOCore
import Testing
import TollgateCore
import TollgateSystem

@testable import TollgateMCP

/// Whether a failed send reached the upstream: each transport says "not sent" only when not one byte of the request
/// was written, which is the one transport failure that gives a call's quota back (`ToolCallOutcome`).
@Suite struct UpstreamDeliveryTests {
    static let logger = Logger(label: "test.upstream-delivery")

    static func call(_ id: Int = 7) throws -> JSONRPCMessage {
        try JSONRPCMessage(parsing: Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"transfer"}}"#.utf8))
    }

    /// The error `body` throws (an `UpstreamError`), or nil when it throws none.
    static func failure(_ body: () async throws -> Void) async -> UpstreamError? {
        do {
            try await body()
            return nil
        } catch {
            return error as? UpstreamError ?? UpstreamError("not an UpstreamError: \(error)")
        }
    }

    // MARK: - The rule

    @Test func onlyACallThatProvablyDidNotRunGivesItsQuotaBack() {
        let refunded: [ToolCallOutcome] = [.notSent("connection refused"), .rpcError(code: -32601), .rpcError(code: -32602)]
        let kept: [ToolCallOutcome] = [
            .success, .toolError, .transportError("the upstream server answered HTTP 503"), .transportError("exited with status 3"),
            .rpcError(code: -32603), .rpcError(code: -32600), .rpcError(code: -32000), .rpcError(code: -32700), .cancelled, .timedOut,
        ]
        for outcome in refunded { #expect(outcome.releasesReservations, "\(outcome)") }
        for outcome in kept { #expect(!outcome.releasesReservations, "\(outcome)") }
        #expect(ToolCallOutcome.notSent("x").name == "not_sent")
        #expect(ToolCallOutcome.transportError("x").name == "transport_error", "the existing name stays for audit replay")
        #expect(ToolCallOutcome.sendFailed(.notSent("refused")) == .notSent("refused"))
        #expect(ToolCallOutcome.sendFailed(UpstreamError("HTTP 503")) == .transportError("HTTP 503"))
    }

    // MARK: - stdio

    @Test func aServerThatCannotBeStartedIsNotSent() async {
        let error = await Self.failure {
            _ = try StdioUpstreamConnection.start(StdioUpstream(command: "/nonexistent/tollgate-no-such-server"), logger: Self.logger)
        }
        #expect(error?.notSent == true, "\(String(describing: error))")
    }

    @Test func aWriteToAChildThatExitedIsNotSent() async throws {
        let upstream = try StdioUpstreamConnection.start(StdioUpstream(command: "/bin/sh", arguments: ["-c", "exit 0"]), logger: Self.logger)
        for await event in upstream.events {
            if case .closed = event { break }
        }
        let error = await Self.failure { try await upstream.send(try! Self.call()) }
        #expect(error?.notSent == true, "\(String(describing: error))")
        await upstream.close()
    }

    @Test func aWriteToAChildThatClosedItsInputIsNotSent() async throws {
        // The child runs on but reads nothing: the first byte written meets a pipe without a reader (EPIPE).
        let upstream = try StdioUpstreamConnection.start(
            StdioUpstream(command: "/bin/sh", arguments: ["-c", "exec 0<&-; echo closed; sleep 10"]), logger: Self.logger)
        for await event in upstream.events {
            if case .garbage(let line) = event, line == "closed" { break }
        }
        let error = await Self.failure { try await upstream.send(try! Self.call()) }
        #expect(error?.notSent == true, "\(String(describing: error))")
        await upstream.close()
    }

    // MARK: - HTTP

    @Test func anUpstreamNobodyListensOnIsNotSent() async throws {
        let port = try await ScriptedHTTPServer.unusedPort()
        let clients = UpstreamHTTPClients()
        let upstream = try await HTTPUpstreamConnection.connect(
            HTTPEndpoint(url: "http://127.0.0.1:\(port)/mcp", transport: .streamableHTTP), http: clients, logger: Self.logger)
        let error = await Self.failure { try await upstream.send(try! Self.call()) }
        #expect(error?.notSent == true, "\(String(describing: error))")
        await upstream.close()
        await clients.shutdown()
    }

    @Test func anHTTPStatusComesAfterTheRequestWasSent() async throws {
        let server = try await ScriptedHTTPServer { _, _ in [.send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")] }
        defer { server.stop() }
        let clients = UpstreamHTTPClients()
        let upstream = try await HTTPUpstreamConnection.connect(
            HTTPEndpoint(url: "http://127.0.0.1:\(server.port)/mcp", transport: .streamableHTTP), http: clients, logger: Self.logger)
        let error = await Self.failure { try await upstream.send(try! Self.call()) }
        #expect(error?.message.contains("HTTP 503") == true, "\(String(describing: error))")
        #expect(error?.notSent == false, "the upstream had the request")
        #expect(server.requests.count == 1)
        await upstream.close()
        await clients.shutdown()
    }

    @Test func aConnectionDroppedAfterTheRequestIsNotCountedAsUnsent() async throws {
        let server = try await ScriptedHTTPServer { _, _ in [.close] }
        defer { server.stop() }
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        await #expect {
            _ = try await client.execute(.POST, server.target, headers: [], body: ByteBuffer(string: "{}"))
        } throws: { error in
            !(error is PlainHTTPClient.NotSent)
        }
        #expect(server.requests.count == 1, "the server read the request before it hung up")
    }

    @Test func aRefusedConnectionIsNotSentAtTheClient() async throws {
        let port = try await ScriptedHTTPServer.unusedPort()
        let client = PlainHTTPClient()
        defer { Task { await client.shutdown() } }
        let target = try #require(PlainHTTPClient.Target(url: "http://127.0.0.1:\(port)/mcp"))
        await #expect(throws: PlainHTTPClient.NotSent.self) {
            _ = try await client.execute(.POST, target, headers: [], body: ByteBuffer(string: "{}"))
        }
    }

    // MARK: - The environment of a child

    @Test func aChildGetsTheAllowlistAndItsOwnEnvironmentOnly() {
        let gateway = [
            "PATH": "/usr/bin:/bin", "HOME": "/home/gw", "LANG": "C.UTF-8", "LC_TIME": "en_GB.UTF-8", "TZ": "UTC", "TMPDIR": "/run/tg",
            "USER": "tollgate", "DATABASE_URL": "postgresql://u:secret@db/x", "PGPASSWORD": "secret", "PGPORT": "5433",
            "TOLLGATE_AGENT_KEY": "tg_secret", "TOLLGATE_WEBHOOK_SECRET": "whsec_secret", "STRIPE_TOKEN": "sk_secret",
            "LC_SECRET": "not a locale category", "HTTPS_PROXY": "http://u:secret@proxy:3128", "AWS_SECRET_ACCESS_KEY": "secret",
        ]
        let child = ChildEnvironment.mcpServer(adding: ["STRIPE_TOKEN": "sk_secret", "TZ": "Europe/Paris"], from: gateway)
        #expect(
            child == [
                "PATH": "/usr/bin:/bin", "HOME": "/home/gw", "LANG": "C.UTF-8", "LC_TIME": "en_GB.UTF-8", "TZ": "Europe/Paris", "TMPDIR": "/run/tg",
                "USER": "tollgate", "STRIPE_TOKEN": "sk_secret",
            ])
        #expect(ChildEnvironment.mcpServer(adding: [:], from: [:]) == ["PATH": ChildEnvironment.defaultPath], "a PATH to find programs with")
        let postgres = ChildEnvironment.postgres(from: gateway)
        #expect(postgres["PGPORT"] == "5433", "the socket's name, which the gateway's own connection derives from it too")
        #expect(postgres["PGPASSWORD"] == nil && postgres["DATABASE_URL"] == nil && postgres["TOLLGATE_AGENT_KEY"] == nil)
    }
}
