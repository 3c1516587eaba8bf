extension CompiledPolicy {
    /// The decision on `call` made without reading its counts, when it can be: an allow whose every reservation is a
    /// fixed window. Such a decision's ceilings do not depend on the counts, and its reservations are the real test (a
    /// full window refuses them, and the call is then decided on the counts), so a call within its limits costs no read
    /// of the rate windows. `nil` when the counts must be read first (a sliding window, or anything but an allow).
    public func firstGuess(_ call: PolicyCall) -> PolicyDecision? {
        let guess = evaluate(call, counts: [:])
        guard case .allow = guess.outcome, guess.reservations.allSatisfy({ $0.algorithm == .fixed }) else { return nil }
        return guess
    }
}
