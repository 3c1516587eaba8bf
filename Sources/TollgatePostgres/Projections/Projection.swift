/// A table (or several) computed from the event log, and kept up to date by a `ProjectionRunner`.
///
/// `apply` runs in the same transaction that advances the projection's checkpoint, so a crash never applies an
/// event twice or skips one. A projection owns its tables: nothing else writes them, and `reset` empties them
/// for a rebuild from the start of the log, which must give the same rows as the live projection.
public protocol Projection: Sendable {
    /// Unique name, the key of its checkpoint (`streams`, `approvals`, ...).
    var name: String { get }
    /// Empties everything the projection wrote (in the rebuild's transaction).
    func reset(on connection: PostgresConnection) throws
    /// Folds `events` (in log order, never empty) into the projection's tables.
    func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws
    /// See the extension: the event types the projection folds (`nil`: all).
    var eventTypes: Set<String>? { get }
    /// See the extension: whether `apply` reads data and metadata.
    var readsData: Bool { get }
    /// See the extension: a rebuild done by the database alone, over the readable events up to `head`.
    func rebuildInDatabase(through head: LogPosition, on connection: PostgresConnection) throws -> Int?
}

extension Projection {
    /// The event types the projection folds; `nil` (the default) for every type. The runner reads only these, and moves
    /// the checkpoint past the others unread.
    public var eventTypes: Set<String>? { nil }
    /// Whether `apply` reads the events' data and metadata; when `false`, the runner leaves them out (`{}`), which
    /// spares the database rendering every event's JSON.
    public var readsData: Bool { true }
    /// A set-based rebuild for a projection whose fold SQL can express: fills its (emptied) tables from every event up
    /// to `head` in one statement and returns how many events it covered; `nil` (the default) to be replayed event by
    /// event through `apply`. Its result must equal the replay's, which the projection's tests show.
    public func rebuildInDatabase(through head: LogPosition, on connection: PostgresConnection) throws -> Int? { nil }
}
