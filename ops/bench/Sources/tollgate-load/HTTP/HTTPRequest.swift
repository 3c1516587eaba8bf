import NIOCore
import NIOHTTP1

/// One HTTP/1.1 request ready to write, and the JSON-RPC id whose response it waits for (`nil` for a notification
/// or a `DELETE`, which are answered by a status alone).
struct HTTPRequest {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    var jsonRPCID: Int?

    /// A request for `path` with `headers`; `Content-Length` is set from the body.
    init(method: HTTPMethod, path: String, headers: HTTPHeaders, body: ByteBuffer?, jsonRPCID: Int?) {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        self.head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        self.body = body
        self.jsonRPCID = jsonRPCID
    }
}
