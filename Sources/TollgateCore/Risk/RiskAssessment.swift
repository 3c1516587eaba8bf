/// The classifier's verdict on one tool: what it does, how much a wrong call could hurt, and why.
///
/// `reasons` is never empty and is meant for people: it is what `tollgate` shows next to a tool in the inventory and
/// what an auditor reads to see why a `categories:` rule applied (`destructiveHint=true`, `name contains "delete"`).
public struct RiskAssessment: Sendable, Hashable, Codable {
    /// What the tool does to the world.
    public var category: RiskCategory
    /// How much harm a wrong call could do.
    public var level: RiskLevel
    /// The evidence, in the order it was weighed. Never empty.
    public var reasons: [String]

    public init(category: RiskCategory, level: RiskLevel, reasons: [String]) {
        self.category = category
        self.level = level
        self.reasons = reasons
    }
}
