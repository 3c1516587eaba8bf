import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgateMCP
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

    /// A server's stream as this process last read it: each tool's current definition, and the one accepted.
    private struct Known {
        var version: Int64 = 0
        var tools: [String: (hash: String, definition: JSONValue?)] = [:]
        var accepted: [String: (hash: String, definition: JSONValue?)] = [:]

        mutating func apply(_ event: ToolDefinitionEvent, version: Int64) {
            self.version = version
            switch event {
            case .observed(let observed):
                tools[observed.tool] = (observed.hash, observed.definition)
                if observed.baseline == true { accepted[observed.tool] = (observed.hash, observed.definition) }
            case .changed(let changed): tools[changed.tool] = (changed.hash, changed.definition)
            case .removed(let removed): tools[removed.tool] = nil
            case .accepted(let accept):
                let definition =
                    tools[accept.tool].flatMap { $0.hash == accept.hash ? $0.definition : nil }
                    ?? accepted[accept.tool].flatMap { $0.hash == accept.hash ? $0.definition : nil }
                accepted[accept.tool] = (accept.hash, definition)
            }
        }
    }

    private struct Listing {
        var definitions: [(name: String, bytes: [UInt8])]
        var complete: Bool
        /// Its number among the server's listings observed by this process.
        var sequence: UInt64
    }

    /// What the gate reads without waiting for the actor: per server, the listings observed and recorded so far (by
    /// number), and each tool's accepted hash as last read (servers read at least once only).
    private struct Shared {
        var observed: [String: UInt64] = [:]
        var recorded: [String: UInt64] = [:]
        var accepted: [String: [String: String]] = [:]
    }

    let store: EventStore
    let limits: Limits
    let logger: Logger
    /// What a server's first listing does (its policy's `first_listing`); nil (no policy loaded): the first listing is
    /// kept back (not recorded) until a policy loads.
    let firstListing: @Sendable (String) -> Policy.FirstListing?
    private let classifier = RiskClassifier()
    private let shared = Mutex(Shared())
    private var known: [String: Known] = [:]
    private var waiting: [String: Listing] = [:]
    private var busy: Set<String> = []
    /// A server's first listing, not recorded while no policy was loaded to say what it does (`first_listing`); recorded
    /// once one is, before a call or listing is pinned against the record.
    private var unpoliced: [String: Listing] = [:]

    init(
        store: EventStore, limits: Limits = Limits(), firstListing: @escaping @Sendable (String) -> Policy.FirstListing? = { _ in .accept },
        logger: Logger
    ) {
        self.store = store
        self.limits = limits
        self.firstListing = firstListing
        self.logger = logger
    }

    /// Takes note of one listing of `server`'s tools (each element the tool object as the server sent it); `complete`:
    /// the whole list (every page), so tools recorded before and missing now are removed.
    nonisolated func observe(_ definitions: [(name: String, bytes: [UInt8])], server: String, complete: Bool) {
        let sequence = shared.withLock { shared -> UInt64 in
            let next = (shared.observed[server] ?? 0) + 1
            shared.observed[server] = next
            return next
        }
        let listing = Listing(definitions: definitions, complete: complete, sequence: sequence)
        Task(priority: .background) { await self.enqueue(listing, server: server) }
    }

    private func enqueue(_ listing: Listing, server: String) async {
        waiting[server] = listing
        guard !busy.contains(server) else { return }
        busy.insert(server)
        while let next = waiting.removeValue(forKey: server) {
            await record(next, server: server)
            // Recorded, or given up on (logged): a later listing replaced every earlier one still waiting.
            shared.withLock { $0.recorded[server] = max($0.recorded[server] ?? 0, next.sequence) }
        }
        busy.remove(server)
    }

    // MARK: - Pins

    /// Whether the call's definition `hash` is the accepted one for `tool`, known without waiting: the server's record
    /// was read, every listing observed is recorded, and the hash read matches. False says "ask ``pin(server:tool:hash:)``".
    nonisolated func isAccepted(server: String, tool: String, hash: String) -> Bool {
        shared.withLock { shared in
            (shared.recorded[server] ?? 0) >= (shared.observed[server] ?? 0) && shared.accepted[server]?[tool] == hash
        }
    }

    /// How the call's definition `hash` of `tool` stands against the one accepted: once every listing of `server`
    /// observed before now is recorded, against the record as read now (the database is read again when it does not
    /// match, so a definition accepted by another gateway counts). Throws when the record cannot be read.
    func pin(server: String, tool: String, hash: String) async throws -> DefinitionPin {
        recordUnpoliced(server)
        try await settle(server)
        var state = try await load(server)
        if state.accepted[tool]?.hash != hash { state = try await refresh(server) }
        let seen = state.tools[tool].flatMap { $0.hash == hash ? $0.definition : nil }
        return DefinitionPin(hash: hash, accepted: state.accepted[tool], seen: seen)
    }

    /// The hash of `tool`'s definition as last recorded (read again now), nil when it is not recorded or removed.
    func recordedHash(server: String, tool: String) async throws -> String? {
        try await refresh(server).tools[tool]?.hash
    }

    /// What an agent's listing shows instead of what was listed: a tool whose listed definition is not the accepted one
    /// shows the accepted definition (its canonical JSON), or nothing when none was accepted or it was too large to keep.
    /// Waits (up to `within`) for the listing to be recorded; if the record cannot be read, shows nothing of any tool.
    func presentation(_ definitions: [(name: String, bytes: [UInt8])], server: String, within: Duration) async -> [String: ToolPresentation] {
        recordUnpoliced(server)
        let hashes = definitions.map { ToolDefinition.hash(of: $0.bytes) }
        var state: Known
        do {
            // Past the wait, the answer shows what the record said before (the listing is still recorded meanwhile).
            do { try await settle(server, within: within) } catch is NotSettled {}
            state = try await load(server)
            // A listed definition that is not the accepted one as last read: read again, in case another gateway (or
            // the API on another gateway) accepted it meanwhile.
            let stale = zip(definitions, hashes).contains { listed, hash in state.accepted[listed.name]?.hash != hash }
            if stale { state = try await refresh(server) }
        } catch {
            logger.warning(
                "cannot read the tool inventory; the tools/list answer shows no tool", metadata: ["server": "\(server)", "error": "\(error)"])
            return Dictionary(definitions.map { ($0.name, .omitted) }, uniquingKeysWith: { first, _ in first })
        }
        var presented: [String: ToolPresentation] = [:]
        for (listed, hash) in zip(definitions, hashes) {
            guard let hash else {
                presented[listed.name] = .omitted
                continue
            }
            guard let accepted = state.accepted[listed.name] else {
                presented[listed.name] = .omitted
                continue
            }
            if accepted.hash == hash { continue }
            presented[listed.name] = accepted.definition.map { .replaced(Array($0.canonicalJSON.utf8)) } ?? .omitted
        }
        return presented
    }

    /// Records a first listing kept back for want of a policy, now that one is loaded.
    private func recordUnpoliced(_ server: String) {
        guard firstListing(server) != nil, let listing = unpoliced.removeValue(forKey: server) else { return }
        observe(listing.definitions, server: server, complete: listing.complete)
    }

    /// Waits until every listing of `server` observed before now is recorded (or given up on), at most `within`.
    private func settle(_ server: String, within: Duration = .seconds(10)) async throws {
        let target = shared.withLock { $0.observed[server] ?? 0 }
        let until = ContinuousClock.now + within
        while shared.withLock({ ($0.recorded[server] ?? 0) < target }) {
            guard ContinuousClock.now < until else { throw NotSettled(server: server) }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The listings of a server were not recorded in time.
    struct NotSettled: Error, CustomStringConvertible {
        var server: String
        var description: String { "the tool listing of `\(server)` was not recorded in time" }
    }

    /// The server's record: as read before, or read now for the first time.
    private func load(_ server: String) async throws -> Known {
        if let state = known[server] { return state }
        return try await refresh(server)
    }

    /// The server's record with the events appended since it was last read.
    @discardableResult
    private func refresh(_ server: String) async throws -> Known {
        var state = known[server] ?? Known()
        for event in try await store.read(stream: ToolDefinitionEvent.stream(server: server), fromVersion: state.version + 1) {
            if let decoded = try ToolDefinitionEvent.decode(type: event.type, data: event.data) {
                state.apply(decoded, version: event.version)
            } else {
                state.version = event.version
            }
        }
        // Another task may have read further meanwhile: keep the newer.
        if let other = known[server], other.version > state.version { state = other }
        known[server] = state
        let accepted = state.accepted.mapValues(\.hash)
        shared.withLock { $0.accepted[server] = accepted }
        return state
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
                let state = try await refresh(server)
                // The server's first listing: its tools are the baseline, accepted as listed, when its policy says so.
                // Without a policy (every call is refused meanwhile) it is kept until one loads: it is not for a missing
                // policy to decide whether the first listing is trusted.
                let first = firstListing(server)
                if state.version == 0 && first == nil {
                    unpoliced[server] = listing
                    return
                }
                let baseline = state.version == 0 && first == .accept
                let events = plan(seen, complete: listing.complete, state: state, server: server, baseline: baseline)
                if events.isEmpty { return }
                _ = try await store.append(stream: stream, expectedVersion: state.version == 0 ? .noStream : .exactly(state.version), events: events)
                try await refresh(server)
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
    ///
    /// A baseline (the first listing, accepted as listed) is planned whole within the tools cap, in one append, so no
    /// tool of the first listing is left for a later one (where it would count as new).
    private func plan(_ seen: [String: ToolDefinition], complete: Bool, state: Known, server: String, baseline: Bool) -> [NewEvent] {
        let maxEvents = baseline ? limits.maxToolsPerServer : limits.maxEventsPerListing
        let maxBytes = baseline ? 4 * limits.maxBytesPerListing : limits.maxBytesPerListing
        var events: [NewEvent] = []
        var bytes = 0
        var deferred = 0
        var overCap = 0
        var count = state.tools.count
        func add(_ type: String, _ value: some Encodable) -> Bool {
            guard events.count < maxEvents, bytes < maxBytes, let data = try? EventCoding.encode(value) else {
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
                if add(
                    ToolDefinitionObserved.type,
                    ToolDefinitionObserved(server: server, definition: definition, risk: rate(definition), baseline: baseline))
                {
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
