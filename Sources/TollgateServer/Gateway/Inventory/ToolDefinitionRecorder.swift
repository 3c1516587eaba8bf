import Foundation
import Logging
import TollgateCore
import TollgatePostgres

/// Records what upstreams list: each tool's definition, hashed canonically, as `ToolDefinitionObserved`,
/// `ToolDefinitionChanged` or `ToolRemoved` on the server's stream `tools-<server>` (docs/inventory.md).
///
/// Off the `tools/list` path: ``observe(_:server:complete:)`` returns at once, and the listing is recorded in the
/// background, one at a time per server (a listing that comes while one is recorded replaces any other waiting). Each
/// append names the stream version the recorder read, so gateways and sessions that see the same change append it once:
/// the loser re-reads the stream and finds nothing left to record. A failure is logged; the next listing tries again.
actor ToolDefinitionRecorder {
    /// The bounds of one listing's record, and of one server's inventory.
    struct Limits: Sendable {
        /// Events appended for one listing at most; the rest wait for the next listing.
        var maxEventsPerListing = 200
        /// Bytes of event data appended for one listing at most; the rest wait for the next listing.
        var maxBytesPerListing = 4 << 20
        /// Tools recorded per server at most (removed ones not counted); a new tool past it is not recorded (a warning).
        var maxToolsPerServer = 1000
    }

    private struct Known {
        var version: Int64 = 0
        var tools: [String: (hash: String, definition: JSONValue?)] = [:]
    }

    private struct Listing {
        var definitions: [(name: String, bytes: [UInt8])]
        var complete: Bool
    }

    let store: EventStore
    let limits: Limits
    let logger: Logger
    private let classifier = RiskClassifier()
    private var known: [String: Known] = [:]
    private var waiting: [String: Listing] = [:]
    private var busy: Set<String> = []

    init(store: EventStore, limits: Limits = Limits(), logger: Logger) {
        self.store = store
        self.limits = limits
        self.logger = logger
    }

    /// Takes note of one listing of `server`'s tools (each element the tool object as the server sent it); `complete`:
    /// the whole list (every page), so tools recorded before and missing now are removed.
    nonisolated func observe(_ definitions: [(name: String, bytes: [UInt8])], server: String, complete: Bool) {
        Task(priority: .background) { await self.enqueue(Listing(definitions: definitions, complete: complete), server: server) }
    }

    private func enqueue(_ listing: Listing, server: String) async {
        waiting[server] = listing
        guard !busy.contains(server) else { return }
        busy.insert(server)
        while let next = waiting.removeValue(forKey: server) {
            await record(next, server: server)
        }
        busy.remove(server)
    }

    /// Whether nothing is waiting to be recorded (for tests).
    var isIdle: Bool { busy.isEmpty && waiting.isEmpty }

    private func record(_ listing: Listing, server: String) async {
        var seen: [String: ToolDefinition] = [:]
        for (index, listed) in listing.definitions.enumerated() {
            if let definition = ToolDefinition(name: listed.name, bytes: listed.bytes) { seen[definition.name] = definition }
            if index % 64 == 63 { await Task.yield() }  // a long listing does not hold a thread the relays need
        }
        // Nothing new against what this process last knew: no read, no write.
        if let state = known[server], seen.allSatisfy({ state.tools[$0.key]?.hash == $0.value.hash }),
            !listing.complete || state.tools.count == seen.count
        {
            return
        }
        let stream = ToolDefinitionEvent.stream(server: server)
        for _ in 0..<5 {
            do {
                var state = known[server] ?? Known()
                for event in try await store.read(stream: stream, fromVersion: state.version + 1) {
                    state.version = event.version
                    switch try ToolDefinitionEvent.decode(type: event.type, data: event.data) {
                    case .observed(let observed): state.tools[observed.tool] = (observed.hash, observed.definition)
                    case .changed(let changed): state.tools[changed.tool] = (changed.hash, changed.definition)
                    case .removed(let removed): state.tools[removed.tool] = nil
                    case .accepted, nil: break
                    }
                }
                known[server] = state
                let events = plan(seen, complete: listing.complete, state: state, server: server)
                if events.isEmpty { return }
                _ = try await store.append(stream: stream, expectedVersion: state.version == 0 ? .noStream : .exactly(state.version), events: events)
                return
            } catch EventStoreError.wrongExpectedVersion {
                continue  // another gateway or session recorded first: read what it wrote and decide again
            } catch {
                logger.warning(
                    "could not record the tool definitions; the next listing tries again", metadata: ["server": "\(server)", "error": "\(error)"])
                return
            }
        }
        logger.warning("could not record the tool definitions after 5 tries; the next listing tries again", metadata: ["server": "\(server)"])
    }

    /// The events one listing calls for, within ``Limits``: changes and new tools by name, then removals.
    private func plan(_ seen: [String: ToolDefinition], complete: Bool, state: Known, server: String) -> [NewEvent] {
        var events: [NewEvent] = []
        var bytes = 0
        var deferred = 0
        var overCap = 0
        var count = state.tools.count
        func add(_ type: String, _ value: some Encodable) -> Bool {
            guard events.count < limits.maxEventsPerListing, bytes < limits.maxBytesPerListing, let data = try? EventCoding.encode(value) else {
                deferred += 1
                return false
            }
            events.append(NewEvent(type: type, data: data))
            bytes += data.count
            return true
        }
        for name in seen.keys.sorted() {
            let definition = seen[name]!
            if let old = state.tools[name] {
                guard old.hash != definition.hash else { continue }
                _ = add(
                    ToolDefinitionChanged.type,
                    ToolDefinitionChanged(server: server, oldHash: old.hash, old: old.definition, definition: definition, risk: rate(definition)))
            } else {
                guard count < limits.maxToolsPerServer else {
                    overCap += 1
                    continue
                }
                if add(ToolDefinitionObserved.type, ToolDefinitionObserved(server: server, definition: definition, risk: rate(definition))) {
                    count += 1
                }
            }
        }
        if complete {
            for name in state.tools.keys.sorted() where seen[name] == nil {
                _ = add(ToolRemoved.type, ToolRemoved(server: server, tool: name, hash: state.tools[name]!.hash))
            }
        }
        if deferred > 0 {
            logger.notice(
                "more tool definition changes than one listing records; the rest wait for the next listing",
                metadata: ["server": "\(server)", "deferred": "\(deferred)", "max_events": "\(limits.maxEventsPerListing)"])
        }
        if overCap > 0 {
            logger.warning(
                "the server lists more tools than the inventory records; the others are not recorded",
                metadata: ["server": "\(server)", "not_recorded": "\(overCap)", "max_tools": "\(limits.maxToolsPerServer)"])
        }
        return events
    }

    private func rate(_ definition: ToolDefinition) -> RiskAssessment {
        classifier.classify(definition.descriptor)
    }
}
