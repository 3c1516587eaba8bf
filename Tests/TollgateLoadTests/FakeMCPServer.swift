import NIOCore
import NIOHTTP1
import NIOPosix

@testable import tollgate_load

/// A Streamable HTTP MCP server on 127.0.0.1 for the driver tests, small enough to know exactly what it answers.
///
/// `initialize` gets a JSON result and a session id, `notifications/initialized` a 202, `DELETE` a 204 (a 404 for an
/// unknown session). A `tools/call` without the session id and version header gets a 400; otherwise its
/// `arguments.answer` picks the answer:
/// - `json`, `sse`: a result as a JSON body, or as an event stream after a notification;
/// - `alternate`: `json` for even ids, `sse` for odd ones;
/// - `mixed`: by id modulo 4, a result, an `isError` result, a JSON-RPC error, an HTTP 429;
/// - `never`: no answer at all.
/// With `requiredAuthorization` set, a request without that `Authorization` header gets a 401.
final class FakeMCPServer {
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    init(requiredAuthorization: String? = nil) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeMCPHandler(requiredAuthorization: requiredAuthorization))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        port = channel.localAddress!.port!
    }

    var url: String { "http://127.0.0.1:\(port)/mcp" }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

private final class FakeMCPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let sessionID = "fake-session"

    private let requiredAuthorization: String?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(requiredAuthorization: String?) {
        self.requiredAuthorization = requiredAuthorization
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            if let head { respond(to: head, context: context) }
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let requiredAuthorization, head.headers.first(name: "Authorization") != requiredAuthorization {
            return send(.unauthorized, "text/plain", "no", context: context)
        }
        if head.method == .DELETE {
            let known = head.headers.first(name: "Mcp-Session-Id") == Self.sessionID
            return send(known ? .noContent : .notFound, nil, "", context: context)
        }
        guard let message = try? JSONValue(parsing: Array(body.readableBytesView)), let method = message["method"]?.string else {
            return send(.badRequest, "text/plain", "not JSON-RPC", context: context)
        }
        let id = message["id"]?.integer ?? -1
        switch method {
        case "initialize":
            let result = #"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}"#
            send(.ok, "application/json", #"{"jsonrpc":"2.0","id":\#(id),"result":\#(result)}"#, sessionID: Self.sessionID, context: context)
        case "notifications/initialized":
            send(.accepted, nil, "", context: context)
        case "tools/call":
            guard head.headers.first(name: "Mcp-Session-Id") == Self.sessionID,
                head.headers.first(name: "MCP-Protocol-Version") == "2025-11-25"
            else {
                return send(.badRequest, "text/plain", "missing session or version", context: context)
            }
            answerToolCall(id: id, answer: message["params"]?["arguments"]?["answer"]?.string ?? "json", context: context)
        default:
            send(.ok, "application/json", #"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32601,"message":"no"}}"#, context: context)
        }
    }

    private func answerToolCall(id: Int, answer: String, context: ChannelHandlerContext) {
        let result = #"{"jsonrpc":"2.0","id":\#(id),"result":{"content":[{"type":"text","text":"ok"}],"isError":false}}"#
        switch answer {
        case "alternate":
            answerToolCall(id: id, answer: id % 2 == 0 ? "json" : "sse", context: context)
        case "sse":
            let notification = #"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#
            let stream = "id: 0\ndata:\n\nevent: message\ndata: \(notification)\n\nevent: message\ndata: \(result)\n\n"
            send(.ok, "text/event-stream", stream, context: context)
        case "mixed":
            switch id % 4 {
            case 0: send(.ok, "application/json", result, context: context)
            case 1:
                let toolError = #"{"jsonrpc":"2.0","id":\#(id),"result":{"content":[],"isError":true}}"#
                send(.ok, "application/json", toolError, context: context)
            case 2:
                let rpcError = #"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32602,"message":"bad arguments"}}"#
                send(.ok, "application/json", rpcError, context: context)
            default: send(.tooManyRequests, "text/plain", "slow down", context: context)
            }
        case "never":
            break
        default:
            send(.ok, "application/json", result, context: context)
        }
    }

    private func send(
        _ status: HTTPResponseStatus,
        _ contentType: String?,
        _ body: String,
        sessionID: String? = nil,
        context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        if let sessionID { headers.add(name: "Mcp-Session-Id", value: sessionID) }
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
