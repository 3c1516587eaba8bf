/// File paths in a configuration, made absolute against the configuration file's directory, lexically (no file
/// system access: `..` is resolved by dropping the component before it).
enum ConfigPath {
    /// `path` if absolute, else `directory/path`, with `.`, `..`, repeated and trailing `/` removed.
    static func resolve(_ path: String, against directory: String) -> String {
        normalize(path.hasPrefix("/") || directory.isEmpty ? path : directory + "/" + path)
    }

    static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..":
                if let last = components.last, last != ".." {
                    components.removeLast()
                } else if !absolute {
                    components.append(component)
                }
            default: components.append(component)
            }
        }
        let joined = components.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }
}
