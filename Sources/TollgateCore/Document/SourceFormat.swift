/// The syntax of a policy or configuration file.
public enum SourceFormat: String, Sendable, Hashable, CaseIterable {
    case json
    case yaml

    /// The format a file name implies (`.json`; `.yaml` or `.yml`), or the one its content starts like (`{` is JSON).
    public static func detect(fileName: String, text: String) -> SourceFormat {
        let lower = fileName.lowercased()
        if lower.hasSuffix(".json") { return .json }
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") { return .yaml }
        let first = text.unicodeScalars.first { !$0.properties.isWhitespace }
        return first == "{" ? .json : .yaml
    }
}
