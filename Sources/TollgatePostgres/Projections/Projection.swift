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
}
