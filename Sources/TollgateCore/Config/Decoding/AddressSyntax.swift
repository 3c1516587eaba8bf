import Foundation

/// Syntax checks for the addresses a configuration names: the listen address, browser origins and upstream URLs.
/// Each returns `nil` for a good value, or what is wrong with it and, when there is an obvious fix, the fixed value.
enum AddressSyntax {
    struct Problem: Equatable {
        var message: String
        var suggestion: String?
    }

    /// `host:port` or `[IPv6]:port`, the port from 0 (any free port) to 65535.
    static func listenProblem(_ text: String) -> Problem? {
        if let (host, port) = hostAndPort(Substring(text)), !host.isEmpty, let port, port <= 65535 { return nil }
        let suggestion: String?
        if !text.isEmpty && text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            suggestion = "127.0.0.1:\(text)"
        } else if text.hasPrefix(":"), hostAndPort(Substring("0.0.0.0" + text)) != nil {
            suggestion = "0.0.0.0" + text
        } else if let (host, port) = hostAndPort(Substring(text)), !host.isEmpty, port == nil {
            suggestion = text + ":8420"
        } else {
            suggestion = nil
        }
        return Problem(message: "\(quoted(text)) is not a listen address", suggestion: suggestion)
    }

    /// An `http` or `https` URL with a host, without credentials.
    static func urlProblem(_ text: String) -> Problem? {
        if let bad = text.unicodeScalars.first(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            return Problem(message: "\(quoted(text)) contains \(describe(bad)), which a URL cannot hold")
        }
        guard let schemeEnd = text.range(of: "://") else {
            return Problem(
                message: "\(quoted(text)) is not a URL: it has no scheme",
                suggestion: hostAndPort(text.prefix { !"/?#".contains($0) }).map { !$0.host.isEmpty } == true ? "https://" + text : nil
            )
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            return Problem(message: "\(quoted(text)) is not an http or https URL")
        }
        let authority = text[schemeEnd.upperBound...].prefix { !"/?#".contains($0) }
        if authority.contains("@") {
            return Problem(message: "\(quoted(text)) has credentials in it; send them in `headers` (Authorization) instead")
        }
        guard let (host, port) = hostAndPort(authority), !host.isEmpty, (port ?? 1) >= 1, (port ?? 1) <= 65535 else {
            return Problem(message: "\(quoted(text)) has no valid host and port")
        }
        guard URLComponents(string: text) != nil else {
            return Problem(message: "\(quoted(text)) is not a valid URL")
        }
        return nil
    }

    /// A browser origin exactly as an `Origin` header carries it: `scheme://host[:port]`, lowercase, without a path and
    /// without the scheme's default port.
    static func originProblem(_ text: String) -> Problem? {
        if text == "null" {
            return Problem(message: "`null` is the origin of sandboxed pages and local files, which cannot be told apart, so it cannot be allowed")
        }
        guard let schemeEnd = text.range(of: "://") else {
            let looksLikeHost = hostAndPort(Substring(text)).map { !$0.host.isEmpty } ?? false
            return Problem(
                message: "\(quoted(text)) is not an origin: it has no scheme",
                suggestion: looksLikeHost ? "http://" + text.lowercased() : nil
            )
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let validScheme =
            scheme.first.map { $0.isASCII && $0.isLetter } == true
            && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) }
        let authority = text[schemeEnd.upperBound...].prefix { !"/?#".contains($0) }
        guard validScheme, !authority.contains("@"), let (host, port) = hostAndPort(authority), !host.isEmpty,
            (port ?? 1) >= 1, (port ?? 1) <= 65535
        else {
            return Problem(message: "\(quoted(text)) is not an origin")
        }
        var canonical = scheme + "://" + host.lowercased()
        if let port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) { canonical += ":\(port)" }
        guard canonical == text else {
            return Problem(
                message: "\(quoted(text)) is not written as browsers send an origin (lowercase scheme://host[:port], "
                    + "no path, no default port)",
                suggestion: canonical
            )
        }
        return nil
    }

    /// The host and port of `host`, `host:port`, `[IPv6]` or `[IPv6]:port`, or `nil` when it is none of these. The host
    /// may be empty and is at most 255 characters (the longest DNS name); a port, when present, is 1 to 5 digits.
    static func hostAndPort(_ authority: Substring) -> (host: Substring, port: Int?)? {
        let host: Substring
        let rest: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            let inner = authority[authority.index(after: authority.startIndex)..<close]
            let isAddress =
                inner.contains(":") && inner.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ":.%".contains($0)) }
            guard isAddress else { return nil }
            host = authority[...close]
            rest = authority[authority.index(after: close)...]
        } else {
            let colon = authority.firstIndex(of: ":") ?? authority.endIndex
            host = authority[..<colon]
            rest = authority[colon...]
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0)) }) else { return nil }
        }
        guard host.count <= 255 else { return nil }
        if rest.isEmpty { return (host, nil) }
        let digits = rest.dropFirst()
        guard rest.first == ":", !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(digits)
        else { return nil }
        return (host, port)
    }

    /// A value for a message, shortened, in backticks.
    static func quoted(_ text: String) -> String {
        SourceNode(.string(text), at: nil).shortDescription
    }

    static func describe(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case " ": "a space"
        case "\n", "\r": "a line break"
        case "\t": "a tab"
        case "\0": "a NUL character"
        default: "the character U+" + String(scalar.value, radix: 16, uppercase: true)
        }
    }
}
