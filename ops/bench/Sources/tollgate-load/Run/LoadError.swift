/// Why a load test could not run. Calls that fail during the run are counted in the report instead.
enum LoadError: Error, CustomStringConvertible {
    case invalidURL(String, reason: String)
    case cannotResolve(host: String, reason: String)
    case cannotConnect(to: String, reason: String)
    /// A step of the MCP handshake (`initialize`, `notifications/initialized`) did not get the answer it needs.
    case handshakeFailed(step: String, outcome: ResponseOutcome)

    var description: String {
        switch self {
        case .invalidURL(let url, let reason):
            "invalid --url '\(url)': \(reason)"
        case .cannotResolve(let host, let reason):
            "cannot resolve '\(host)': \(reason)"
        case .cannotConnect(let address, let reason):
            "cannot connect to \(address): \(reason); is the server running?"
        case .handshakeFailed(let step, let outcome):
            "the MCP handshake failed at \(step): \(outcome)"
        }
    }
}
