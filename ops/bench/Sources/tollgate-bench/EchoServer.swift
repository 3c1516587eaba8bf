import ArgumentParser
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TollgateMCP

/// `tollgate-bench mcp-echo`: a minimal, fast MCP server over Streamable HTTP (JSON answers) with one tool, `echo`,
/// for measuring what the gateway adds: an upstream that costs next to nothing, so the figures are the gateway's.
struct EchoServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp-echo",
        abstract: "Serve a minimal MCP server (one tool, `echo`) over Streamable HTTP on 127.0.0.1, for proxy benchmarks.")

    @Option(help: "Port on 127.0.0.1 (0 picks a free one; the URL is printed as `READY <url>`).")
    var port = 0

    func run() async throws {
        var logger = Logger(label: "mcp-echo")
        logger.logLevel = .warning
        let router = Router()
        router.post("mcp") { request, _ -> Response in
            var body = try await request.body.collect(upTo: 1 << 20)
            let bytes = body.readBytes(length: body.readableBytes) ?? []
            guard let message = try? JSONRPCMessage(parsing: bytes) else {
                return Self.json(JSONRPCWriter.error(id: nil, code: -32700, message: "Parse error"), status: .badRequest)
            }
            guard message.kind == .request, let id = message.id else { return Response(status: .accepted) }
            let raw = String(decoding: id.raw, as: UTF8.self)
            switch message.method {
            case "initialize":
                let result =
                    #"{"jsonrpc":"2.0","id":\#(raw),"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"#
                    + #""serverInfo":{"name":"tollgate-bench-echo","version":"1.0.0"}}}"#
                var response = Self.json(Array(result.utf8))
                response.headers[HTTPField.Name("Mcp-Session-Id")!] = UUID().uuidString
                return response
            case "tools/list":
                return Self.json(
                    Array(
                        (#"{"jsonrpc":"2.0","id":\#(raw),"result":{"tools":[{"name":"echo","description":"Returns its text.","#
                            + #""inputSchema":{"type":"object","properties":{"text":{"type":"string"}}},"annotations":{"readOnlyHint":true}}]}}"#)
                            .utf8))
            case "tools/call":
                let text = message.decodedParams()?["arguments"]?["text"]?.stringValue ?? ""
                return Self.json(
                    Array((#"{"jsonrpc":"2.0","id":\#(raw),"result":{"content":[{"type":"text","text":\#(JSONRPCWriter.string(text))}]}}"#).utf8))
            default:
                return Self.json(Array(#"{"jsonrpc":"2.0","id":\#(raw),"result":{}}"#.utf8))
            }
        }
        router.delete("mcp") { _, _ in Response(status: .ok) }
        router.get("mcp") { _, _ in Response(status: .methodNotAllowed) }
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "mcp-echo"),
            onServerRunning: { channel in
                print("READY http://127.0.0.1:\(channel.localAddress?.port ?? 0)/mcp")
                fflush(nil)
            }, logger: logger)
        try await app.runService()
    }

    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
