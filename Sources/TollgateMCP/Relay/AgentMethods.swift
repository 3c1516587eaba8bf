/// What the gateway does with each method an agent sends: every method is either governed (decided by the gate before
/// it goes upstream) or on an explicit list that passes upstream unchanged. A method on no list is refused, so a method
/// a future protocol (or a hostile agent) invents never reaches an upstream undecided.
///
/// ```swift
/// if let refusal = AgentMethods.refusal(of: message) { return .immediate(refusal) }
/// ```
public enum AgentMethods {
    /// Requests the gate decides on before they go upstream.
    public static let governed: Set<String> = ["tools/call"]

    /// Requests passed upstream as they are: every client-to-server request of protocols 2024-11-05 to 2026-07-28.
    public static let passedThrough: Set<String> = [
        "initialize", "ping", "server/discover", "subscriptions/listen",
        "tools/list",
        "resources/list", "resources/templates/list", "resources/read", "resources/subscribe", "resources/unsubscribe",
        "prompts/list", "prompts/get",
        "completion/complete", "logging/setLevel",
        "tasks/get", "tasks/result", "tasks/list", "tasks/cancel",
    ]

    /// Requests passed upstream that read data the way a tool call can (a resource's content, a prompt's text): each is
    /// logged with who read what. The policy language does not govern them yet.
    public static let reads: Set<String> = ["resources/read", "prompts/get"]

    /// Requests that change the state of the session they are sent on: passed upstream in a session (which has its
    /// upstream to itself), refused as stateless requests, whose upstream every agent of the server shares, so that no
    /// agent sets another's log level, subscriptions or protocol state.
    public static let sessionOnly: Set<String> = ["initialize", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"]

    /// The refusal of a stateless request that only a session may send (``sessionOnly``), or nil.
    public static func statelessRefusal(of message: JSONRPCMessage) -> [UInt8]? {
        guard message.kind == .request, let name = message.method, sessionOnly.contains(name) else { return nil }
        return JSONRPCWriter.error(
            id: message.id, code: -32600,
            message:
                "Invalid Request: \(name) changes a session's state, and a stateless (2026-07-28) request's upstream is shared by every agent; start a session with initialize (without MCP-Protocol-Version: 2026-07-28) to send it"
        )
    }

    /// Notifications passed upstream: every client-to-server notification of those protocols.
    public static let notifications: Set<String> = [
        "notifications/initialized", "notifications/cancelled", "notifications/progress", "notifications/roots/list_changed",
        "notifications/tasks/status",
    ]

    /// The JSON-RPC error that refuses `message`, or `nil` when it may go on (responses and errors, which answer the
    /// upstream's own requests, always may).
    ///
    /// A request method sent without an `id` is refused rather than forwarded: JSON-RPC servers run notifications, and
    /// a `tools/call` without an id would run with no decision and no event. Its refusal has a `null` id, the only one
    /// JSON-RPC allows for a message whose id cannot be known.
    public static func refusal(of message: JSONRPCMessage) -> [UInt8]? {
        guard let name = message.method else { return nil }
        let method = name.shortened(to: 100)
        switch message.kind {
        case .request:
            guard !governed.contains(name), !passedThrough.contains(name) else { return nil }
            return JSONRPCWriter.error(
                id: message.id, code: -32601,
                message: "Method not found: \(method) is not an MCP method this gateway relays (see docs/gateway.md, \"Methods\")")
        case .notification:
            if notifications.contains(name) { return nil }
            if name.hasPrefix("notifications/") {
                return JSONRPCWriter.error(
                    id: nil, code: -32601, message: "Method not found: \(method) is not a notification this gateway relays")
            }
            return JSONRPCWriter.error(
                id: nil, code: -32600,
                message: "Invalid Request: \(method) is a request and needs an `id`; only notifications/* may be sent without one")
        case .response, .error:
            return nil
        }
    }
}
