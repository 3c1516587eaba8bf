import TollgateCore
import TollgatePostgres

/// Projection `decisions`: tools/call decisions counted by minute, decision and tool (`tollgate.decision_minutes` and
/// `tollgate.tool_minutes`, migration 0017), what the reviewer page's overview draws. The database does the counting
/// (`tollgate.count_decisions` reads the batch's events by position), so the projector decodes no JSON for it.
struct DecisionsProjection: Projection {
    let name = "decisions"
    var eventTypes: Set<String>? { [ToolCallDecided.type, RefusalsSummarized.type] }
    var readsData: Bool { false }

    /// (server, tool) pairs counted by name in one minute; the rest of the minute's calls count as "other tools".
    static let maxNamedToolsPerMinute = 64
    /// Minutes kept before the newest one counted (a day).
    static let keepMinutes = 24 * 60

    func reset(on connection: PostgresConnection) throws {
        try OverviewStore.reset(on: connection)
    }

    func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws {
        let positions = events.filter { eventTypes?.contains($0.type) ?? true }.map(\.position)
        try OverviewStore.count(
            positions: positions, decidedType: ToolCallDecided.type, summarizedType: RefusalsSummarized.type,
            maxNamedTools: Self.maxNamedToolsPerMinute, keepMinutes: Self.keepMinutes, on: connection)
    }
}
