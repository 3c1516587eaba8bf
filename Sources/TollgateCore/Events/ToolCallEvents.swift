import Crypto
import Foundation

/// The event appended for every `tools/call` the gateway decides, before anything is forwarded: who asked, for what,
/// under which policy version and rule, what was decided, and which counter reservations it made. Stream
/// `call-<call id>`, version 1.
public struct ToolCallDecided: Codable, Sendable, Hashable {
    public static let type = "ToolCallDecided"

    @EventID public var callID: UUID
    public var agent: String
    public var grant: String
    public var session: String
    public var server: String
    public var tool: String
    /// The JSON-RPC id of the agent's request, as written.
    public var requestID: String
    /// The arguments as stored: in full, `null` (hash only), or their keys only, per `argumentsStorage`.
    public var arguments: JSONValue?
    /// SHA-256 (hex) of the arguments' canonical JSON: the same arguments always give the same hash.
    public var argumentsHash: String
    /// `full`, `hash` or `keys`; `summary` for a refused call whose arguments, as stored, were over the bound
    /// (`limits.max_refused_argument_bytes`): then `arguments` is absent and `argumentsSummary` says what they were.
    public var argumentsStorage: String
    /// A refused call's arguments too big to keep: their size and top-level keys (the hash is `argumentsHash`).
    /// Absent in events written before the bound, and whenever the arguments are stored as `argumentsStorage` says.
    public var argumentsSummary: ArgumentsSummary?
    /// `allow`, `deny`, `limited`, `require_approval`, `hidden` or `error` (the gate could not decide: refused).
    public var decision: String
    /// For the agent, when the call was refused.
    public var reason: String?
    /// Seconds until a limited call may succeed.
    public var retryAfter: Int?
    /// The rule that decided, such as `tools.transfer.limits[0]`.
    public var rule: String
    public var policyHash: String
    /// The risk category the decision used, when the tool's description was known.
    public var category: String?
    public var reservations: [Reservation]
    /// Time spent deciding (policy and counters, not the append), in microseconds.
    public var decisionMicros: Int
    public var decidedAt: Date
    /// The approval request a `require_approval` call created, joined or used.
    public var approvalID: UUID?
    /// The hash of the tool's definition the call was decided on, as the session's upstream listed it
    /// (docs/inventory.md); nil when the gate had no definition (no tool list, or an unknown tool).
    public var definitionHash: String?
    /// Whether that definition was the accepted one: `accepted`, `changed` (another definition was accepted), or
    /// `new` (none was); nil when not known.
    public var definitionStatus: String?

    public init(
        callID: UUID, agent: String, grant: String, session: String, server: String, tool: String, requestID: String,
        arguments: JSONValue?, argumentsHash: String, argumentsStorage: String, decision: String, reason: String?,
        retryAfter: Int?, rule: String, policyHash: String, category: String?, reservations: [Reservation],
        decisionMicros: Int, decidedAt: Date, approvalID: UUID? = nil, argumentsSummary: ArgumentsSummary? = nil
    ) {
        self.callID = callID
        self.agent = agent
        self.grant = grant
        self.session = session
        self.server = server
        self.tool = tool
        self.requestID = requestID
        self.arguments = arguments
        self.argumentsHash = argumentsHash
        self.argumentsStorage = argumentsStorage
        self.decision = decision
        self.reason = reason
        self.retryAfter = retryAfter
        self.rule = rule
        self.policyHash = policyHash
        self.category = category
        self.reservations = reservations
        self.decisionMicros = decisionMicros
        self.decidedAt = decidedAt
        self.approvalID = approvalID
        self.argumentsSummary = argumentsSummary
    }

    /// One counter increment made with the decision.
    public struct Reservation: Codable, Sendable, Hashable {
        public var server: String
        public var counter: String
        public var scope: String
        public var windowStart: Int64
        public var windowSeconds: Int
        public var amount: Double

        public init(server: String, counter: String, scope: String, windowStart: Int64, windowSeconds: Int, amount: Double) {
            self.server = server
            self.counter = counter
            self.scope = scope
            self.windowStart = windowStart
            self.windowSeconds = windowSeconds
            self.amount = amount
        }

        public init(_ reservation: CounterReservation) {
            self.init(
                server: reservation.key.server, counter: reservation.key.counter, scope: reservation.key.scope,
                windowStart: reservation.key.windowStart, windowSeconds: reservation.key.windowSeconds, amount: reservation.amount)
        }

        public var key: CounterKey {
            CounterKey(server: server, counter: counter, scope: scope, windowStart: windowStart, windowSeconds: windowSeconds)
        }
    }

    /// SHA-256 (lowercase hex) of `arguments`' canonical JSON.
    public static func hash(arguments: JSONValue) -> String {
        Hex.lowercase(SHA256.hash(data: Array(arguments.canonicalJSON.utf8)))
    }
}

/// The event appended when a forwarded call ends: how, after how long, and which reservations were given back
/// (only a call that provably did not run upstream gives its quota back: `not_sent`, or `rpc_error` -32601 or
/// -32602). Stream `call-<call id>`, version 2.
public struct ToolCallCompleted: Codable, Sendable, Hashable {
    public static let type = "ToolCallCompleted"

    @EventID public var callID: UUID
    public var server: String
    public var tool: String
    /// `success`, `tool_error`, `rpc_error`, `not_sent` (never written to the upstream), `transport_error` (failed
    /// after it was, or perhaps while), `cancelled` or `timed_out`.
    public var outcome: String
    /// The JSON-RPC error code for `rpc_error`.
    public var errorCode: Int?
    /// What went wrong, for `not_sent` and `transport_error`.
    public var error: String?
    public var durationMillis: Double
    /// The reservations given back (empty unless the call provably did not run).
    public var released: [ToolCallDecided.Reservation]
    public var completedAt: Date

    public init(
        callID: UUID, server: String, tool: String, outcome: String, errorCode: Int?, error: String?, durationMillis: Double,
        released: [ToolCallDecided.Reservation], completedAt: Date
    ) {
        self.callID = callID
        self.server = server
        self.tool = tool
        self.outcome = outcome
        self.errorCode = errorCode
        self.error = error
        self.durationMillis = durationMillis
        self.released = released
        self.completedAt = completedAt
    }
}

/// The rate windows as a pure fold of the log: the reference the database table is checked against.
///
/// ```swift
/// var ledger = RateWindowLedger()
/// ledger.apply(decided)       // adds its reservations when the call was allowed
/// ledger.apply(completed)     // subtracts the released ones
/// ledger.counts[key]
/// ```
public struct RateWindowLedger: Sendable, Equatable {
    public private(set) var counts: [CounterKey: Double] = [:]

    public init() {}

    public mutating func apply(_ event: ToolCallDecided) {
        for reservation in event.reservations { counts[reservation.key, default: 0] += reservation.amount }
    }

    /// An approved call's reservations, made as it was released.
    public mutating func apply(_ event: ApprovalConsumed) {
        for reservation in event.reservations { counts[reservation.key, default: 0] += reservation.amount }
    }

    public mutating func apply(_ event: ToolCallCompleted) {
        for reservation in event.released { counts[reservation.key, default: 0] -= reservation.amount }
    }
}
