extension HTTPHeader {
    /// Headers the gateway sets itself, or that describe one connection rather than the request (hop-by-hop), so a
    /// configuration cannot set them. Lowercase.
    static let reservedNames: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer",
        "upgrade", "mcp-session-id", "mcp-protocol-version",
    ]

    /// Whether `name` is an RFC 9110 token: letters, digits and ``!#$%&'*+-.^_`|~``.
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 256
            && name.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
            }
    }

    /// The first character a header value cannot hold: a control character other than tab (a line break would let the
    /// value smuggle in another header).
    static func forbiddenCharacter(in value: String) -> Unicode.Scalar? {
        value.unicodeScalars.first { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }
    }
}
