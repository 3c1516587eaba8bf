import TollgateCore

/// Builds the few JSON-RPC messages the gateway writes itself: errors, tool-error results and its own requests.
public enum JSONRPCWriter {
    /// `text` as a JSON string literal (escaped as in canonical JSON).
    public static func string(_ text: String) -> String {
        JSONValue.string(text).canonicalJSON
    }

    /// `{"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M[,"data":D]}}`; a missing id is written as `null`.
    public static func error(id: JSONRPCID?, code: Int, message: String, data: JSONValue? = nil) -> [UInt8] {
        var text = #"{"jsonrpc":"2.0","id":"# + (id.map { String(decoding: $0.raw, as: UTF8.self) } ?? "null")
        text += #","error":{"code":\#(code),"message":\#(string(message))"#
        if let data { text += #","data":"# + data.canonicalJSON }
        text += "}}"
        return Array(text.utf8)
    }

    /// A successful response carrying a `CallToolResult` with `isError: true`: how a refusal reaches the agent as a
    /// readable tool result that every client generation shows as such. `meta` goes in the result's `_meta`.
    /// With `resultType`, the result is tagged `"resultType":"complete"`, as protocol 2026-07-28 requires.
    public static func toolError(
        id: JSONRPCID, text message: String, meta: [String: JSONValue], structured: JSONValue? = nil, resultType: Bool = false
    ) -> [UInt8] {
        var text = #"{"jsonrpc":"2.0","id":"# + String(decoding: id.raw, as: UTF8.self)
        text += #","result":{"content":[{"type":"text","text":\#(string(message))}],"isError":true"#
        if let structured { text += #","structuredContent":"# + structured.canonicalJSON }
        if resultType { text += #","resultType":"complete""# }
        if !meta.isEmpty { text += #","_meta":"# + JSONValue.object(meta).canonicalJSON }
        text += "}}"
        return Array(text.utf8)
    }

    /// A request of the gateway's own.
    public static func request(id: JSONRPCID, method: String, params: String? = nil) -> [UInt8] {
        var text = #"{"jsonrpc":"2.0","id":"# + String(decoding: id.raw, as: UTF8.self) + #","method":\#(string(method))"#
        if let params { text += #","params":"# + params }
        return Array((text + "}").utf8)
    }

    /// A notification of the gateway's own.
    public static func notification(method: String, params: String? = nil) -> [UInt8] {
        var text = #"{"jsonrpc":"2.0","method":\#(string(method))"#
        if let params { text += #","params":"# + params }
        return Array((text + "}").utf8)
    }
}
