import Crypto

extension Policy {
    /// `sha256:` and the lowercase hex SHA-256 of the compact canonical JSON. Two files that mean the same policy
    /// (whatever their format, layout, key order or comments) have the same hash; any change of meaning changes it.
    public var contentHash: String {
        let digest = SHA256.hash(data: Array(PolicyPrinter.json(canonicalNode, pretty: false).utf8))
        return "sha256:" + Hex.lowercase(digest)
    }
}
