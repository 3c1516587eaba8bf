/// Paths of fields in a policy or configuration, as error messages and decisions name them:
/// `tools.transfer.limits[0].window`.
enum FieldPath {
    /// `base.key`, or `base["odd key"]` when the key has characters that would make the path ambiguous.
    static func key(_ base: String, _ key: String) -> String {
        let plain =
            !key.isEmpty
            && key.unicodeScalars.allSatisfy { scalar in
                scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "_-*?/:".unicodeScalars.contains(scalar)
            }
        let component = plain ? key : "[\"\(key.replacingQuotes())\"]"
        if base.isEmpty { return component }
        return plain ? "\(base).\(component)" : "\(base)\(component)"
    }

    static func index(_ base: String, _ index: Int) -> String { "\(base)[\(index)]" }
}

extension String {
    fileprivate func replacingQuotes() -> String {
        var result = ""
        for character in self {
            if character == "\"" || character == "\\" { result.append("\\") }
            result.append(character)
        }
        return result
    }
}
