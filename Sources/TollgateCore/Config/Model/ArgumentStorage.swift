/// How much of a call's arguments the event log keeps: all of them, a hash of them (to match repeats without keeping
/// the values), or only their top-level keys.
public enum ArgumentStorage: String, Sendable, Hashable, CaseIterable {
    case full
    case hash
    case keys
}
