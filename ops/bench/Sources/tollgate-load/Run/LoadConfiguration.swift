import NIOCore
import NIOHTTP1

/// Everything one load test needs, checked: what the command line asked for.
struct LoadConfiguration: Sendable {
    /// How calls are paced.
    enum Mode: Sendable, Equatable {
        /// Open loop: call `n` is due at `start + n / rate` whatever happened to the calls before it.
        case fixedRate(Double)
        /// Closed loop: each connection sends its next call as soon as the previous one is answered.
        case saturate
    }

    var target: TargetURL
    /// Extra request headers (`Authorization`, ...), sent on every request.
    var headers: [(name: String, value: String)]
    var tool: String
    /// The JSON object text sent as `params.arguments`, as given.
    var arguments: String
    var mode: Mode
    var duration: TimeAmount
    var warmup: TimeAmount
    /// Connections opened before the clock starts; in `saturate` mode, the number of calls in flight.
    var connections: Int
    /// How many connections a fixed-rate run may open when all are busy.
    var maximumConnections: Int
    var sessions: Int
    /// How long a call may take, from its scheduled time, before it counts as timed out.
    var timeout: TimeAmount
    /// Whether to keep every measured call's time and latency (`--samples-file`).
    var keepSamples = false
    /// The protocol version offered in `initialize`.
    var protocolVersion = "2025-11-25"

    init(
        target: TargetURL, headers: [(name: String, value: String)], tool: String, arguments: String, mode: Mode,
        duration: TimeAmount, warmup: TimeAmount, connections: Int, maximumConnections: Int, sessions: Int, timeout: TimeAmount,
        keepSamples: Bool = false
    ) {
        self.target = target
        self.headers = headers
        self.tool = tool
        self.arguments = arguments
        self.mode = mode
        self.duration = duration
        self.warmup = warmup
        self.connections = connections
        self.maximumConnections = maximumConnections
        self.sessions = sessions
        self.timeout = timeout
        self.keepSamples = keepSamples
    }
}

/// An `http://host:port/path` URL, the only kind the load generator speaks.
struct TargetURL: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var path: String

    var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "http://\(shownHost):\(port)\(path)"
    }

    /// The `Host` header value.
    var authority: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(shownHost):\(port)"
    }

    init(parsing text: String) throws(LoadError) {
        guard text.hasPrefix("http://") else {
            throw .invalidURL(text, reason: "only http:// URLs are supported (the gateway is measured over loopback)")
        }
        let rest = text.dropFirst("http://".count)
        let authority = rest.prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" })
        let path = rest.dropFirst(authority.count).prefix(while: { $0 != "#" })
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .invalidURL(text, reason: "unterminated '[' in the host") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw .invalidURL(text, reason: "unexpected text after the host")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, !host.contains("@") else { throw .invalidURL(text, reason: "no host (user information is not supported)") }
        var port = 80
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw .invalidURL(text, reason: "the port must be a number from 1 to 65535")
            }
            port = value
        }
        self.host = String(host)
        self.port = port
        self.path = path.isEmpty ? "/" : String(path)
    }
}
