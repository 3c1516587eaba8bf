/// A tool key or `hide` entry: an exact tool name, or a glob where `*` matches any run of characters (also none) and
/// `?` matches one character.
///
/// Among the patterns that match a tool, the most specific decides: more literal (non-wildcard) characters first,
/// then fewer `*`, then the key that sorts first by Unicode scalar values. An exact name beats every pattern.
struct ToolPattern: Sendable, Hashable {
    let text: String
    private let scalars: [Unicode.Scalar]
    let literalCount: Int
    let starCount: Int

    init(_ text: String) {
        self.text = text
        self.scalars = Array(text.unicodeScalars)
        self.literalCount = scalars.filter { $0 != "*" && $0 != "?" }.count
        self.starCount = scalars.filter { $0 == "*" }.count
    }

    /// Whether the key has a wildcard at all; a key without one matches only its exact name.
    static func isPattern(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0 == "*" || $0 == "?" }
    }

    /// Whether `lhs` takes precedence over `rhs` when both match.
    static func precedes(_ lhs: ToolPattern, _ rhs: ToolPattern) -> Bool {
        if lhs.literalCount != rhs.literalCount { return lhs.literalCount > rhs.literalCount }
        if lhs.starCount != rhs.starCount { return lhs.starCount < rhs.starCount }
        return lhs.scalars.lexicographicallyPrecedes(rhs.scalars) { $0.value < $1.value }
    }

    /// Glob matching with backtracking to the last `*` only: O(name × pattern) at worst, no recursion.
    func matches(_ name: [Unicode.Scalar]) -> Bool {
        var p = 0
        var n = 0
        var star = -1
        var resume = 0
        while n < name.count {
            if p < scalars.count && (scalars[p] == "?" || (scalars[p] != "*" && scalars[p] == name[n])) {
                p += 1
                n += 1
            } else if p < scalars.count && scalars[p] == "*" {
                star = p
                resume = n
                p += 1
            } else if star >= 0 {
                p = star + 1
                resume += 1
                n = resume
            } else {
                return false
            }
        }
        while p < scalars.count && scalars[p] == "*" { p += 1 }
        return p == scalars.count
    }
}
