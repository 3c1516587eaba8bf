import Synchronization
import TollgateCore

/// The classifier's category for each tool the gate has seen, kept so that a call does not classify its tool again.
///
/// Classifying reads the tool's name, description and schema word by word (about 15 µs, most of a decision's own
/// CPU); a tool's descriptor changes only when its server lists it anew. The memo is keyed by the whole descriptor,
/// so a changed description or schema is classified afresh. It is emptied when it grows past a bound, so a server
/// that renames its tools at will cannot make it grow without end; the bound is low (a deployment's distinct tools,
/// not its calls) because each entry keeps its descriptor, schema included, after the sessions that listed it end.
final class RiskCategories: Sendable {
    private let classifier = RiskClassifier()
    private let known = Mutex<[ToolDescriptor: RiskCategory]>([:])
    static let maxTools = 1024

    /// The category of `tool`, from the memo when it holds this very descriptor.
    func category(of tool: ToolDescriptor) -> RiskCategory {
        if let category = known.withLock({ $0[tool] }) { return category }
        let category = classifier.classify(tool).category
        known.withLock { known in
            if known.count >= Self.maxTools { known.removeAll(keepingCapacity: true) }
            known[tool] = category
        }
        return category
    }

    /// How many descriptors the memo holds (for tests).
    var count: Int { known.withLock { $0.count } }
}
