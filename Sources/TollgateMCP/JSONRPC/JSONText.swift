import TollgateCore

/// Builds the few JSON-RPC messages the gateway writes itself: errors, tool-error results and its own requests.
public enum JSONText {
    /// `text` as a JSON string literal.
    public static func string(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
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
    public static func toolError(id: JSONRPCID, text message: String, meta: [String: JSONValue], resultType: Bool = false) -> [UInt8] {
        var text = #"{"jsonrpc":"2.0","id":"# + String(decoding: id.raw, as: UTF8.self)
        text += #","result":{"content":[{"type":"text","text":\#(string(message))}],"isError":true"#
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
