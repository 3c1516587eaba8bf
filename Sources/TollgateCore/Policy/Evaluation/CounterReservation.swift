/// An increment the caller makes when it forwards an allowed call (and rolls back if the upstream call fails).
///
/// The decision was made on the counts the caller supplied; to stay exact under concurrency the store makes the
/// increment only if `count + amount <= ceiling` still holds at that moment, atomically (and otherwise reports the call
/// as limited).
public struct CounterReservation: Sendable, Hashable {
    /// The counter and window to add to (for `sliding` limits, the current window).
    public var key: CounterKey
    /// What this call adds.
    public var amount: Double
    /// The most the window's count may reach with this call included. For `fixed` windows this is the limit's `max`;
    /// for `sliding` ones, `max` minus the weighted count of the previous window.
    public var ceiling: Double
    /// The limit's `max`.
    public var max: Double
    public var algorithm: PolicyLimit.Algorithm
    /// The limit that asked for it, such as `tools.transfer.limits[0]`.
    public var rule: String

    public init(key: CounterKey, amount: Double, ceiling: Double, max: Double, algorithm: PolicyLimit.Algorithm, rule: String) {
        self.key = key
        self.amount = amount
        self.ceiling = ceiling
        self.max = max
        self.algorithm = algorithm
        self.rule = rule
    }
}
