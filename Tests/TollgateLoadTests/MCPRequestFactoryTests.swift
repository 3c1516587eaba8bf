import NIOCore
import NIOHTTP1
import Testing

@testable import tollgate_load

struct MCPRequestFactoryTests {
    private let configuration = LoadConfiguration(
        target: try! TargetURL(parsing: "http://127.0.0.1:8420/mcp/time"),
        headers: [("Authorization", "Bearer k")],
        tool: "get\"time",
        arguments: #"{"timezone":"UTC"}"#,
        mode: .saturate,
        duration: .seconds(1),
        warmup: .zero,
        connections: 1,
        maximumConnections: 1,
        sessions: 1,
        timeout: .seconds(1)
    )

    private func body(_ request: HTTPRequest) throws -> JSONValue {
        try JSONValue(parsing: Array(request.body!.readableBytesView))
    }

    @Test func initializeOffers20251125WithoutTheVersionHeader() throws {
        let factory = MCPRequestFactory(configuration: configuration)
        let request = factory.initialize(id: 1)
        let message = try body(request)
        #expect(request.head.method == .POST && request.head.uri == "/mcp/time")
        #expect(message["method"]?.string == "initialize")
        #expect(message["params"]?["protocolVersion"]?.string == "2025-11-25")
        #expect(request.head.headers["Accept"] == ["application/json, text/event-stream"])
        #expect(request.head.headers["Authorization"] == ["Bearer k"])
        #expect(request.head.headers["Host"] == ["127.0.0.1:8420"])
        #expect(request.head.headers["MCP-Protocol-Version"].isEmpty)
        #expect(request.head.headers["Content-Length"] == [String(request.body!.readableBytes)])
    }

    @Test func toolCallsCarryTheSessionAndTheirOwnID() throws {
        let factory = MCPRequestFactory(configuration: configuration)
        let session = MCPSession(id: "s-1", protocolVersion: "2025-11-25", baseHeaders: factory.baseHeaders)
        let request = factory.toolCall(id: 12345, session: session)
        let message = try body(request)
        #expect(message["id"]?.integer == 12345)
        #expect(message["method"]?.string == "tools/call")
        #expect(message["params"]?["name"]?.string == "get\"time")
        #expect(message["params"]?["arguments"]?["timezone"]?.string == "UTC")
        #expect(request.jsonRPCID == 12345)
        #expect(request.head.headers["Mcp-Session-Id"] == ["s-1"])
        #expect(request.head.headers["MCP-Protocol-Version"] == ["2025-11-25"])
    }

    @Test func deleteEndsTheSessionWithoutABody() {
        let factory = MCPRequestFactory(configuration: configuration)
        let session = MCPSession(id: "s-1", protocolVersion: "2025-11-25", baseHeaders: factory.baseHeaders)
        let request = factory.delete(session: session)
        #expect(request.head.method == .DELETE && request.body == nil)
        #expect(request.head.headers["Mcp-Session-Id"] == ["s-1"])
        #expect(request.head.headers["Content-Type"].isEmpty)
        #expect(request.head.headers["Content-Length"] == ["0"])
    }
}
