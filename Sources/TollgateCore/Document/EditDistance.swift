/// Suggestions for misspelt keys and values ("did you mean `limits`?").
enum EditDistance {
    /// The edit distance between two strings (insertions, deletions, substitutions and swaps of two neighbours each
    /// count 1, so `grnat` is 1 from `grant`), compared case-insensitively by Unicode scalar.
    static func between(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs.lowercased().unicodeScalars)
        let b = Array(rhs.lowercased().unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var beforePrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], beforePrevious[j - 2] + 1)
                }
            }
            (beforePrevious, previous, current) = (previous, current, beforePrevious)
        }
        return previous[b.count]
    }

    /// The candidate nearest to `word`, if it is near enough to be a plausible typo: at most a third of the word's
    /// length away (at least 1, at most 3), or differing only in `-`/`_` and case.
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        guard word.count <= 64 else { return nil }
        let normalized = word.lowercased().replacingOccurrences(of: "-", with: "_")
        if let exact = candidates.first(where: { $0.lowercased() == normalized }) { return exact }
        let budget = min(3, max(1, word.count / 3))
        var best: (String, Int)?
        for candidate in candidates {
            let distance = between(word, candidate)
            if distance <= budget && distance < (best?.1 ?? Int.max) { best = (candidate, distance) }
        }
        return best?.0
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}
