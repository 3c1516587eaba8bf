import Crypto
import Foundation

/// What a refused call's event keeps of arguments too big to store in full: their size and their top-level keys (the
/// SHA-256 of their canonical JSON is the event's `argumentsHash`), so one agent cannot fill the log with refusals.
///
/// ```swift
/// var decided = ToolCallDecided(...)              // arguments as the server's `store_arguments` says
/// decided.bound(canonicalBytes: 921_600, arguments: arguments, maxBytes: 4096)
/// decided.argumentsStorage                       // "summary"
/// decided.argumentsSummary?.bytes                // 921600
/// ```
public struct ArgumentsSummary: Codable, Sendable, Hashable {
    /// The size of the arguments' canonical JSON, in bytes.
    public var bytes: Int
    /// The top-level keys of an object, sorted, at most ``maxKeys``, each cut to ``maxKeyBytes`` bytes (`…` marks a
    /// cut key); empty for arguments that are not an object.
    public var keys: [String]
    /// How many more top-level keys there were than `keys` holds.
    public var keysOmitted: Int

    /// Keys kept at most.
    public static let maxKeys = 32
    /// Bytes of one key kept at most.
    public static let maxKeyBytes = 64

    public init(bytes: Int, keys: [String], keysOmitted: Int) {
        self.bytes = bytes
        self.keys = keys
        self.keysOmitted = keysOmitted
    }

    /// The summary of `arguments`, whose canonical JSON has `bytes` bytes.
    public init(_ arguments: JSONValue, bytes: Int) {
        var keys: [String] = []
        var omitted = 0
        if case .object(let members) = arguments {
            let sorted = members.keys.sorted()
            keys = sorted.prefix(Self.maxKeys).map { $0.cut(toBytes: Self.maxKeyBytes) }
            omitted = sorted.count - keys.count
        }
        self.init(bytes: bytes, keys: keys, keysOmitted: omitted)
    }

    var json: JSONValue {
        .object(["bytes": .number(Double(bytes)), "keys": .array(keys.map { .string($0) }), "keysOmitted": .number(Double(keysOmitted))])
    }
}

extension ToolCallDecided {
    /// The default of `limits.max_refused_argument_bytes`: a refused call whose arguments, as stored, have more bytes
    /// of canonical JSON keeps only their summary.
    public static let defaultMaxRefusedArgumentBytes = 4096
    /// The most bytes of a request id or a tool name a refused call's event keeps (an id over 256 bytes is refused
    /// before any decision; a tool name is cut only when the upstream's tool list could not be had, or by a `hide`
    /// pattern, the two ways a name the upstream does not list reaches the gate).
    public static let maxRefusedNameBytes = 256

    /// SHA-256 (lowercase hex) of canonical JSON bytes.
    public static func hash(canonical bytes: [UInt8]) -> String {
        Hex.lowercase(SHA256.hash(data: bytes))
    }

    /// Bounds what the event of a refused call keeps: arguments whose stored form is over `maxBytes` bytes of canonical
    /// JSON are replaced by their summary (`argumentsStorage` `summary`), and the request id and the tool name are cut
    /// to ``maxRefusedNameBytes`` bytes (`…` marks a cut).
    ///
    /// - Parameters:
    ///   - arguments: the call's arguments in full.
    ///   - canonicalBytes: the size of their canonical JSON.
    public mutating func bound(arguments: JSONValue, canonicalBytes: Int, maxBytes: Int) {
        requestID = requestID.cut(toBytes: Self.maxRefusedNameBytes)
        tool = tool.cut(toBytes: Self.maxRefusedNameBytes)
        let stored: Int
        switch self.arguments {
        case .none: stored = 0
        case .some where argumentsStorage == ArgumentStorage.full.rawValue: stored = canonicalBytes
        case .some(let value): stored = value.canonicalJSON.utf8.count
        }
        guard stored > maxBytes else { return }
        self.arguments = nil
        argumentsStorage = "summary"
        argumentsSummary = ArgumentsSummary(arguments, bytes: canonicalBytes)
    }
}

/// The event that stands for an agent's refused calls past its budget of fully recorded refusals in one minute
/// (`limits.max_recorded_refusals_per_minute`): the calls were answered as always, and are counted here by server,
/// tool, decision and reason instead of one `ToolCallDecided` each. Stream `refusals-<id>`, version 1.
public struct RefusalsSummarized: Codable, Sendable, Hashable {
    public static let type = "RefusalsSummarized"

    @EventID public var summaryID: UUID
    public var agent: String
    /// The minute the count covers: from its first refusal.
    public var windowStart: Date
    public var windowEnd: Date
    /// Refusals of the agent recorded in full in the window (the budget).
    public var recorded: Int
    /// Refusals counted here and not recorded one by one.
    public var summarized: Int
    /// The counts, largest first, at most ``maxEntries``.
    public var entries: [Entry]
    /// Refusals counted in no entry (past ``maxEntries`` distinct ones).
    public var otherCount: Int

    /// Distinct (server, tool, decision, reason) counted at most.
    public static let maxEntries = 32
    /// Bytes of a tool name or a reason kept at most.
    public static let maxTextBytes = 256

    public init(
        summaryID: UUID, agent: String, windowStart: Date, windowEnd: Date, recorded: Int, summarized: Int, entries: [Entry], otherCount: Int
    ) {
        self.summaryID = summaryID
        self.agent = agent
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.recorded = recorded
        self.summarized = summarized
        self.entries = entries
        self.otherCount = otherCount
    }

    public struct Entry: Codable, Sendable, Hashable {
        public var server: String
        public var tool: String
        /// `deny`, `limited`, `require_approval`, `hidden` or `error`, as in `ToolCallDecided.decision`.
        public var decision: String
        public var reason: String?
        public var count: Int

        public init(server: String, tool: String, decision: String, reason: String?, count: Int) {
            self.server = server
            self.tool = tool
            self.decision = decision
            self.reason = reason
            self.count = count
        }
    }

    public static func stream(_ id: UUID) -> String { "refusals-\(id.lowercasedString)" }
}

/// The per-agent budget of refusals recorded in full, as a pure state machine: each refusal is either recorded (the
/// agent's first `budget` refusals in a minute that starts with its first refusal) or counted for the minute's
/// ``RefusalsSummarized``, which is due when the minute ends.
///
/// ```swift
/// var ledger = RefusalLedger(budget: 60)
/// switch ledger.refused(agent: "bot", server: "s", tool: "t", decision: "deny", reason: "no", now: now) {
/// case .record: ...                 // append its ToolCallDecided
/// case .count(let firstPastBudget): // answered, not recorded; the summary is due at ledger.dueAt
/// }
/// let summaries = ledger.due(now: later)  // the summaries of minutes that ended
/// ```
public struct RefusalLedger: Sendable {
    public let budget: Int
    public let window: TimeInterval
    private var agents: [String: Window] = [:]

    private struct Key: Hashable {
        var server: String
        var tool: String
        var decision: String
        var reason: String?
    }

    private struct Window {
        var start: Date
        var recorded = 0
        var counts: [Key: Int] = [:]
        var other = 0
        var summarized = 0
    }

    public enum Admission: Sendable, Equatable {
        /// Record the refusal in full.
        case record
        /// Count it in the window's summary; `firstPastBudget` for the first refusal past the budget in the window.
        case count(firstPastBudget: Bool)
    }

    public init(budget: Int, window: TimeInterval = 60) {
        self.budget = max(0, budget)
        self.window = window
    }

    public mutating func refused(agent: String, server: String, tool: String, decision: String, reason: String?, now: Date) -> Admission {
        var current = agents[agent] ?? Window(start: now)
        if now >= current.start.addingTimeInterval(window) {
            // The minute ended; a summary it still holds is taken by `due` first, so this only restarts a quiet one.
            guard current.summarized == 0 else { return countLate(agent: agent, now: now) }
            current = Window(start: now)
        }
        defer { agents[agent] = current }
        if current.recorded < budget {
            current.recorded += 1
            return .record
        }
        let key = Key(
            server: server, tool: tool.cut(toBytes: RefusalsSummarized.maxTextBytes), decision: decision,
            reason: reason?.cut(toBytes: RefusalsSummarized.maxTextBytes))
        if current.counts[key] != nil || current.counts.count < RefusalsSummarized.maxEntries {
            current.counts[key, default: 0] += 1
        } else {
            current.other += 1
        }
        current.summarized += 1
        return .count(firstPastBudget: current.summarized == 1)
    }

    /// A refusal after its agent's minute ended with a summary not yet taken: counted in that summary (it is written
    /// within moments, and the minute it says it covers is its start to when it is written).
    private mutating func countLate(agent: String, now: Date) -> Admission {
        agents[agent]?.other += 1
        agents[agent]?.summarized += 1
        return .count(firstPastBudget: false)
    }

    /// When the earliest pending summary is due, if any.
    public var dueAt: Date? {
        agents.values.filter { $0.summarized > 0 }.map { $0.start.addingTimeInterval(window) }.min()
    }

    /// Refusals counted and not yet written in a summary.
    public var pending: Int { agents.values.reduce(0) { $0 + $1.summarized } }

    /// The summaries of the minutes that ended by `now` (all of them with `everything`, on shutdown), taken out of the
    /// ledger; the agents' minutes start again at their next refusal.
    public mutating func due(now: Date, everything: Bool = false) -> [RefusalsSummarized] {
        var summaries: [RefusalsSummarized] = []
        for (agent, current) in agents where everything || now >= current.start.addingTimeInterval(window) {
            agents[agent] = nil
            guard current.summarized > 0 else { continue }
            let entries = current.counts.map { key, count in
                RefusalsSummarized.Entry(server: key.server, tool: key.tool, decision: key.decision, reason: key.reason, count: count)
            }
            .sorted { ($0.count, $1.server, $1.tool, $1.decision) > ($1.count, $0.server, $0.tool, $0.decision) }
            summaries.append(
                RefusalsSummarized(
                    summaryID: UUID.random(), agent: agent, windowStart: current.start, windowEnd: max(now, current.start),
                    recorded: current.recorded, summarized: current.summarized, entries: entries, otherCount: current.other))
        }
        // Memory: agents with no summary pending and a minute over are dropped above; the rest are at most the
        // configured agents.
        return summaries.sorted { $0.agent < $1.agent }
    }
}

extension String {
    /// The longest prefix of at most `limit` UTF-8 bytes that ends on a character boundary, with `…` when cut.
    func cut(toBytes limit: Int) -> String {
        guard utf8.count > limit else { return self }
        // `…` is 3 bytes; back off to a scalar boundary.
        var end = utf8.index(utf8.startIndex, offsetBy: max(0, limit - 3))
        while end > startIndex, end.samePosition(in: unicodeScalars) == nil { end = utf8.index(before: end) }
        return String(self[..<end]) + "…"
    }
}
