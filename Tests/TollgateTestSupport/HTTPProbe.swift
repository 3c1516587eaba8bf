import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal blocking HTTP/1.1 client over a loopback TCP socket, for probing a `tollgate serve` the test
/// started (`/readyz` until it answers). Not a general client.
public enum HTTPProbe {
    public struct Response: Sendable {
        public var status: Int
        public var body: String
        /// Header lines as received, names lowercased.
        public var headers: [(name: String, value: String)] = []

        public init(status: Int, body: String, headers: [(name: String, value: String)] = []) {
            self.status = status
            self.body = body
            self.headers = headers
        }

        public func header(_ name: String) -> String? {
            headers.first { $0.name == name.lowercased() }?.value
        }
    }

    /// `GET path` on 127.0.0.1:`port`; `nil` when nothing answers (connection refused, timeout).
    public static func get(port: Int, path: String, timeout: Duration = .seconds(5)) -> Response? {
        request(port: port, method: "GET", path: path, timeout: timeout)
    }

    /// Any request on 127.0.0.1:`port`, with `Connection: close`; the body is read to the end of the connection,
    /// and a chunked body is decoded. `nil` when nothing answers.
    public static func request(
        port: Int, method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = [], timeout: Duration = .seconds(10)
    ) -> Response? {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        return raw(port: port, request: Array((head + "\r\n").utf8) + body, timeout: timeout)
    }

    /// Sends `request` bytes as they are (for malformed HTTP) and reads the answer.
    /// A blocking TCP connection to 127.0.0.1:`port` with `timeout` on each send and receive; nil when it cannot connect.
    /// The caller closes it.
    public static func connect(port: Int, timeout: Duration = .seconds(10)) -> Int32? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        var time = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            return nil
        }
        return socket
    }

    public static func raw(port: Int, request: [UInt8], timeout: Duration = .seconds(10)) -> Response? {
        guard let socket = connect(port: port, timeout: timeout) else { return nil }
        defer { close(socket) }
        var sent = 0
        while sent < request.count {
            let count = request.withUnsafeBytes { send(socket, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }
            sent += count
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        guard let split = received.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let headText = String(decoding: received[..<split.lowerBound], as: UTF8.self)
        let lines = headText.components(separatedBy: "\r\n")
        guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1.1 "), let status = Int(statusLine.dropFirst(9).prefix(3)) else {
            return nil
        }
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(received[split.upperBound...])
        if headers.contains(where: { $0.name == "transfer-encoding" && $0.value.lowercased().contains("chunked") }) {
            body = dechunk(body)
        }
        return Response(status: status, body: String(decoding: body, as: UTF8.self), headers: headers)
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].firstRange(of: Array("\r\n".utf8)) else { break }
            let sizeText = String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            let end = min(bytes.count, start + size)
            out += bytes[start..<end]
            index = end + 2
        }
        return out
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Polls `GET path` until it answers `status` or `timeout` passes; returns the last response.
    public static func waitFor(port: Int, path: String, status: Int = 200, timeout: Duration) async -> Response? {
        let deadline = ContinuousClock.now + timeout
        var last: Response?
        while ContinuousClock.now < deadline {
            last = get(port: port, path: path, timeout: .seconds(2))
            if last?.status == status { return last }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return last
    }
}
