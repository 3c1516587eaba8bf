/// What a tool does to the world, as far as a gateway can tell. Policies can set a default action per category
/// (`categories:`) for the tools that no tool key names.
public enum RiskCategory: String, Sendable, Hashable, CaseIterable, Codable {
    /// Reads data and changes nothing.
    case read
    /// Creates or changes data that can be changed back.
    case write
    /// Runs code or commands.
    case execute
    /// Moves money or value: payments, refunds, trades, transfers.
    case financial
    /// Deletes or overwrites data, or does something that cannot be undone.
    case destructive
    /// Anything the classifier cannot place.
    case other
}

/// How much harm a wrong call to a tool could do.
public enum RiskLevel: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case low
    case medium
    case high
    case critical

    public static func < (lhs: RiskLevel, rhs: RiskLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
