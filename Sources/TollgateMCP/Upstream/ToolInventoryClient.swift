import Foundation
import TollgateCore

/// A minimal MCP client of the gateway's own: performs the `initialize` handshake on an upstream connection and
/// lists every tool (all pages), for `tollgate tools` and `tollgate policy scaffold`.
public struct ToolInventoryClient: Sendable {
    public let connection: any UpstreamConnection
    public let timeout: Duration

    public init(connection: any UpstreamConnection, timeout: Duration = .seconds(30)) {
        self.connection = connection
        self.timeout = timeout
    }

    /// What the upstream said about itself in its `initialize` result, and its tools.
    public struct Inventory: Sendable {
        public var serverName: String?
        public var serverVersion: String?
        public var protocolVersion: String?
        public var tools: [ToolDescriptor]
    }

    public func inventory() async throws(UpstreamError) -> Inventory {
        var iterator = connection.events.makeAsyncIterator()
        let initialize = try await request(
            "initialize",
            params: #"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"tollgate-inventory","version":"0.1.0"}}"#,
            id: 1, iterator: &iterator)
        try await connection.send(try! JSONRPCMessage(parsing: JSONRPCWriter.notification(method: "notifications/initialized")))
        let info = initialize.decodedResult()
        var tools: [ToolDescriptor] = []
        var cursor: String?
        for page in 0..<100 {
            let params = cursor.map { #"{"cursor":\#(JSONRPCWriter.string($0))}"# }
            let reply = try await request("tools/list", params: params, id: 2 + page, iterator: &iterator)
            guard let list = ToolListResponse(reply) else { throw UpstreamError("the upstream's tools/list result has no `tools` list") }
            tools += list.tools
            guard let next = list.nextCursor else { break }
            cursor = next
        }
        return Inventory(
            serverName: info?["serverInfo"]?["name"]?.stringValue, serverVersion: info?["serverInfo"]?["version"]?.stringValue,
            protocolVersion: info?["protocolVersion"]?.stringValue, tools: tools)
    }

    private func request(
        _ method: String, params: String?, id: Int, iterator: inout AsyncStream<UpstreamEvent>.AsyncIterator
    ) async throws(UpstreamError) -> JSONRPCMessage {
        let requestID = JSONRPCID(string: "tollgate-inventory-\(id)")
        let message = try! JSONRPCMessage(parsing: JSONRPCWriter.request(id: requestID, method: method, params: params))
        try await connection.send(message)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let event = await iterator.next() else { throw UpstreamError("the upstream closed the connection during \(method)") }
            switch event {
            case .message(let reply) where reply.id == requestID:
                if reply.kind == .error {
                    throw UpstreamError("the upstream answered \(method) with an error: \(String(decoding: reply.bytes.prefix(300), as: UTF8.self))")
                }
                return reply
            case .closed(let reason):
                throw UpstreamError(reason)
            default:
                continue
            }
        }
        throw UpstreamError("the upstream did not answer \(method) within \(timeout)")
    }
}

extension JSONRPCMessage {
    /// `result` decoded.
    func decodedResult() -> JSONValue? {
        guard let resultRange else { return nil }
        return try? JSONValue(parsing: String(decoding: bytes[resultRange], as: UTF8.self))
    }
}
