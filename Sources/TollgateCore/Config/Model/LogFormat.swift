/// How log lines are written: for people (`text`) or for a log collector (`json`, one object a line).
public enum LogFormat: String, Sendable, Hashable, CaseIterable {
    case text
    case json
}
