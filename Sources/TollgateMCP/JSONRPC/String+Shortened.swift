extension String {
    /// The string cut to its first `count` Unicode scalars, with `…` when it was longer: for an agent's or an upstream's
    /// text quoted in an error or a log line.
    func shortened(to count: Int) -> String {
        unicodeScalars.count > count ? String(String.UnicodeScalarView(unicodeScalars.prefix(count))) + "…" : self
    }
}
