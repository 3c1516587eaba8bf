import TollgateCore

/// A relay's whole state as one pure value: its requests (``RelayRequests``), its upstream connection
/// (``UpstreamLifecycle``) and what it knows of the upstream's tools (``ToolCatalog/State``), with the inputs that
/// touch more than one of them. ``RelaySession`` and ``StatelessRelay`` are thin shells over it (``RelayShell``).
struct RelayStateMachine<Sink, Connection> {
    var requests: RelayRequests<Sink>
    var upstream = UpstreamLifecycle<Connection>()
    var catalog = ToolCatalog.State()

    init(mode: RelayRequests<Sink>.Mode) {
        requests = RelayRequests(mode: mode)
    }

    /// One message from the upstream connection (`relatedTo`: it came on that request's own stream).
    mutating func upstreamMessage(_ message: JSONRPCMessage, relatedTo related: JSONRPCID? = nil) -> RelayRequests<Sink>.Action {
        if message.method == "notifications/tools/list_changed" { catalog.forget() }
        let action = requests.upstreamMessage(message, relatedTo: related)
        if case .answerToolList(let list, _, let firstPage) = action { catalog.page(list.tools, firstPage: firstPage) }
        return action
    }

    /// Upstream connection `generation` ended at `now`: what was sent on it is answered, and the catalog forgotten.
    mutating func upstreamEnded(generation: Int, reason: String, now: ContinuousClock.Instant) -> [RelayRequests<Sink>.Action] {
        guard upstream.ended(generation: generation, now: now) else { return [] }
        catalog.forget()
        return requests.upstreamClosed(reason: reason)
    }

    /// The relay ends: every request, and the connection to close.
    mutating func close(answer: (JSONRPCID?) -> [UInt8]?) -> (actions: [RelayRequests<Sink>.Action], connection: Connection?) {
        (requests.close(answer: answer), upstream.close())
    }
}
