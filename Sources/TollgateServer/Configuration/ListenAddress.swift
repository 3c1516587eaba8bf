/// Where the HTTP server listens: `host:port`, `[v6]:port`, or `:port` for every interface.
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(_ text: String) throws {
        let message = "a listen address must be host:port, [ipv6]:port or :port with a port from 1 to 65535; got \"\(text.prefix(100))\""
        guard let colon = text.lastIndex(of: ":"), text.count <= 300 else { throw ListenAddressError(message: message) }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { throw ListenAddressError(message: message) }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }) else {
            throw ListenAddressError(message: message)
        }
        self.host = host
        self.port = port
    }
}

/// A `--listen` value (or `listen:` setting) that is not an address and port.
public struct ListenAddressError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { message }
}
