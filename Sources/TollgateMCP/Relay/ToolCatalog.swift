import TollgateCore

/// The upstream's tool list as a relay knows it when a call comes: listed, or why it could not be had.
///
/// Every `tools/call` is decided against this list (the tool's descriptor feeds the risk-category rules, and a name the
/// upstream does not list is unknown), so a relay that has none reads it first, and refuses the call when it cannot.
enum ToolCatalog {
    case listed([String: ToolDescriptor])
    case unavailable(String)

    /// How long the gateway waits for one page of the upstream's `tools/list` (at most the request time-out).
    static let loadLimit: Duration = .seconds(10)
    /// The most pages the gateway reads of one list.
    static let maxPages = 50

    /// One page of the gateway's own `tools/list`, or why it is not one: no answer within `limit`, an error, or no list.
    static func page(_ reply: JSONRPCMessage?, limit: Duration) -> Result<ToolListResponse, Unavailable> {
        guard let reply else { return .failure(Unavailable("no answer to tools/list within \(limit.components.seconds) s")) }
        if reply.kind == .error {
            return .failure(Unavailable("the server answered tools/list with an error: \(errorText(of: reply))"))
        }
        guard let list = ToolListResponse(reply) else { return .failure(Unavailable("the server's answer to tools/list has no tool list")) }
        return .success(list)
    }

    /// A JSON-RPC error's code and message, short, for a refusal's text.
    private static func errorText(of reply: JSONRPCMessage) -> String {
        "\(reply.errorCode.map(String.init) ?? "?") \((reply.errorMessage ?? "").shortened(to: 120))"
    }

    struct Unavailable: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

extension ToolCatalog {
    /// What a relay knows of its upstream's tools: a pure state machine. An agent's `tools/list` teaches it (the first
    /// page replaces what was known, later pages add to it), so does the gateway's own reading (``listed(_:)``); a
    /// `notifications/tools/list_changed` from the upstream or the upstream's end makes it forget, and the next call
    /// reads the list again.
    struct State {
        private(set) var tools: [String: ToolDescriptor]?

        mutating func page(_ page: [ToolDescriptor], firstPage: Bool) {
            var known = firstPage ? [:] : (tools ?? [:])
            for tool in page { known[tool.name] = tool }
            tools = known
        }

        mutating func listed(_ all: [String: ToolDescriptor]) { tools = all }

        mutating func forget() { tools = nil }
    }
}
