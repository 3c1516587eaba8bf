import Foundation
import TollgateCore
import TollgatePostgres

/// Projection `inventory`: one row per (server, tool) in `tollgate.tool_inventory`, the fold of the servers' streams
/// `tools-<server>` (``ToolDefinitionEvent``), with each tool's accepted definition (a baseline observation or its latest
/// `ToolDefinitionAccepted`) beside its current one. Rows skip the events they already hold, so `rebuild` replays the log
/// into the same rows.
struct InventoryProjection: Projection {
    let name = "inventory"
    var eventTypes: Set<String>? { ToolDefinitionEvent.types }

    func reset(on connection: PostgresConnection) throws {
        try InventoryStore.reset(on: connection)
    }

    func apply(_ events: [RecordedEvent], on connection: PostgresConnection) throws {
        for recorded in events {
            guard let event = try ToolDefinitionEvent.decode(type: recorded.type, data: recorded.data) else { continue }
            func text(_ value: some Encodable) throws -> String { String(decoding: try EventCoding.encode(value), as: UTF8.self) }
            switch event {
            case .observed(let seen):
                try InventoryStore.apply(
                    .observed, server: seen.server, tool: seen.tool, version: recorded.version, at: recorded.recordedAt, hash: seen.hash,
                    definition: try seen.definition.map(text), definitionBytes: seen.definitionBytes, category: seen.category, level: seen.level,
                    reasons: try text(seen.reasons), baseline: seen.baseline == true, on: connection)
            case .changed(let changed):
                try InventoryStore.apply(
                    .changed(lastChange: try text(changed)), server: changed.server, tool: changed.tool, version: recorded.version,
                    at: recorded.recordedAt, hash: changed.hash, definition: try changed.definition.map(text),
                    definitionBytes: changed.definitionBytes,
                    category: changed.category, level: changed.level, reasons: try text(changed.reasons), on: connection)
            case .removed(let removed):
                try InventoryStore.apply(
                    .removed, server: removed.server, tool: removed.tool, version: recorded.version, at: recorded.recordedAt, hash: removed.hash,
                    definition: nil, definitionBytes: 0, category: "", level: "", reasons: "[]", on: connection)
            case .accepted(let accepted):
                try InventoryStore.apply(
                    .accepted(by: accepted.by, approvalID: accepted.approvalID), server: accepted.server, tool: accepted.tool,
                    version: recorded.version, at: accepted.acceptedAt, hash: accepted.hash, definition: nil, definitionBytes: 0, category: "",
                    level: "", reasons: "[]", on: connection)
            }
        }
    }
}
