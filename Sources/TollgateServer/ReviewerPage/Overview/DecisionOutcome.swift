import TollgateCore

/// The outcomes the overview counts a tools/call decision under, in the order the chart stacks them (bottom first).
///
/// ```swift
/// DecisionOutcome(decision: "require_approval")  // .held
/// ```
enum DecisionOutcome: String, CaseIterable, Sendable, Hashable {
    case allowed, denied, limited, held, hidden
    /// The gate could not decide (`error`: no policy, the tool list could not be had), and refusals a summary counted
    /// without their decision.
    case other

    /// The outcome of a `ToolCallDecided.decision` (or a summary entry's decision).
    init(decision: String) {
        switch decision {
        case "allow": self = .allowed
        case "deny": self = .denied
        case "limited": self = .limited
        case "require_approval": self = .held
        case "hidden": self = .hidden
        default: self = .other
        }
    }

    /// A colour from the Okabe–Ito palette (told apart with the common colour-vision deficiencies); the pattern and the
    /// label tell the outcomes apart without it.
    var colour: String {
        switch self {
        case .allowed: "#009E73"
        case .denied: "#D55E00"
        case .limited: "#E69F00"
        case .held: "#0072B2"
        case .hidden: "#CC79A7"
        case .other: "#666666"
        }
    }

    /// What a reader is told the outcome means.
    var meaning: String {
        switch self {
        case .allowed: "forwarded to the upstream"
        case .denied: "refused by a deny rule"
        case .limited: "refused by a rate or spend limit"
        case .held: "held for a reviewer's approval"
        case .hidden: "a hidden or unknown tool"
        case .other: "refused because the gate could not decide, or counted in a summary without its decision"
        }
    }
}
