extension CompiledPolicy {
    /// Whether `tool` is hidden: removed from `tools/list` and answered as unknown on `tools/call`.
    public func isHidden(_ tool: String) -> Bool {
        hideIndex(of: tool) != nil
    }

    /// The names from a `tools/list` result that agents may see, in their order.
    public func visibleTools(names: [String]) -> [String] {
        names.filter { !isHidden($0) }
    }

    /// The position in `hide` of the entry that hides `tool`: an exact name first, else the first pattern written.
    func hideIndex(of tool: String) -> Int? {
        if let index = hideExact[tool] { return index }
        if hidePatterns.isEmpty { return nil }
        let scalars = Array(tool.unicodeScalars)
        return hidePatterns.first { $0.pattern.matches(scalars) }?.index
    }
}
