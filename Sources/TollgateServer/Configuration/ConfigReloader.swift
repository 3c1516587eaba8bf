import Foundation
import Logging
import Synchronization
import TollgateCore

/// Reloads the agents, reviewers and webhooks of the gateway's configuration file when it changes, or on SIGHUP,
/// as ``PolicyBook`` reloads policies (docs/operating.md, "Reloading").
///
/// The file's size and modification time are looked at every ``PolicyBook/pollInterval``; a changed content is applied
/// once it has settled (read again unchanged at least `settle` later), so a file caught half-written is never applied.
/// The whole file is checked as `serve` checks it at startup; only when all of it is valid do its agents, reviewers and
/// webhooks replace those in force, together (``LiveConfig``). A content with errors keeps everything in force and logs
/// every error, once. A valid content that also changes what only a restart applies (the listen address, the database,
/// the servers, the limits, ...) has its agents, reviewers and webhooks applied, and a warning names the rest.
///
/// After a reload, `onAgentsEnded` is called with the agents removed or whose key or grant changed: the gateway ends
/// their sessions (their next request is refused: their key names no agent, or a new one).
final class ConfigReloader: Sendable {
    /// What reading the file gave.
    private enum Content: Equatable {
        case bytes(Data)
        case unreadable(String)
    }

    private struct Stat: Equatable {
        var modified: Date?
        var size: Int

        init(path: String) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            modified = attributes?[.modificationDate] as? Date
            size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        }
    }

    private struct State {
        /// The size and modification time when the file was last read.
        var stat: Stat?
        /// The content last decided on (applied, or rejected and reported); nil until the first look, which compares
        /// the file with the configuration loaded at startup.
        var decided: Content?
        /// A content read that differs from `decided`, and when it was first read.
        var pending: (content: Content, since: ContinuousClock.Instant)?
    }

    /// What one reload did.
    struct Reload: Sendable, Equatable {
        /// The agents removed, or whose key or grant changed: their sessions end.
        var endedAgents: Set<String> = []
        /// The errors of a content that was not applied.
        var errors: [String] = []
        /// The top-level keys whose change needs a restart.
        var needsRestart: [String] = []
    }

    let path: String
    private let directory: String
    /// The configuration the gateway started with: what only a restart changes is compared with it.
    private let started: GatewayConfig
    private let live: LiveConfig
    private let settle: Duration
    private let limits: SourceLimits
    private let logger: Logger
    private let state = Mutex(State())
    private let onAgentsEnded = Mutex<(@Sendable (Set<String>) async -> Void)?>(nil)

    init(
        path: String, started: GatewayConfig, live: LiveConfig, settle: Duration = PolicyBook.defaultSettle, limits: SourceLimits = .default,
        logger: Logger
    ) {
        self.path = path
        directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        self.started = started
        self.live = live
        self.settle = settle
        self.limits = limits
        self.logger = logger
    }

    func setOnAgentsEnded(_ body: @escaping @Sendable (Set<String>) async -> Void) {
        onAgentsEnded.withLock { $0 = body }
    }

    /// Looks at the file every ``PolicyBook/pollInterval`` until cancelled.
    func watch() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: PolicyBook.pollInterval)
            await reloadChanged()
        }
    }

    /// Looks at the file if its size or modification time changed or a content waits to settle (always, with `force`:
    /// SIGHUP), and applies a content that has settled; returns what that did (nil: nothing was applied or rejected).
    @discardableResult
    func reloadChanged(force: Bool = false) async -> Reload? {
        let now = ContinuousClock.now
        let decided: Content? = state.withLock { state in
            let stat = Stat(path: path)
            if !force, state.pending == nil, state.stat == stat { return nil }
            state.stat = stat
            let content = read()
            if content == state.decided {
                state.pending = nil
                return nil
            }
            guard let pending = state.pending, pending.content == content, pending.since.duration(to: now) >= settle else {
                if state.pending?.content != content { state.pending = (content, now) }
                return nil
            }
            state.pending = nil
            state.decided = content
            return content
        }
        guard let decided else { return nil }
        let reload = apply(decided)
        if !reload.endedAgents.isEmpty, let end = onAgentsEnded.withLock({ $0 }) { await end(reload.endedAgents) }
        return reload
    }

    /// The file's bytes; never more than the limit and one byte are read.
    private func read() -> Content {
        guard let handle = FileHandle(forReadingAtPath: path) else { return .unreadable("it does not exist or cannot be opened") }
        defer { try? handle.close() }
        do {
            let data = try handle.read(upToCount: limits.maxBytes + 1) ?? Data()
            guard data.count <= limits.maxBytes else {
                return .unreadable("it has more than \(limits.maxBytes) bytes, the most a configuration file may have")
            }
            return .bytes(data)
        } catch {
            return .unreadable(error.localizedDescription)
        }
    }

    /// Validates a content and, when all of it is valid, puts its agents, reviewers and webhooks in force.
    private func apply(_ content: Content) -> Reload {
        var reload = Reload()
        let config: GatewayConfig
        switch content {
        case .unreadable(let why):
            reload.errors = ["\(path): cannot read the configuration file: \(why)"]
            logRejected(reload.errors)
            return reload
        case .bytes(let data):
            do {
                config = try GatewayConfigLoader.load(
                    data, fileName: path, directory: directory, environment: ProcessInfo.processInfo.environment, limits: limits)
            } catch {
                reload.errors = error.diagnostics.map(\.description)
                logRejected(reload.errors)
                return reload
            }
        }
        reload.needsRestart = Self.restartKeys(started, config)
        if !reload.needsRestart.isEmpty {
            logger.warning(
                "configuration file: changes that need a restart were not applied",
                metadata: ["file": "\(path)", "needs_restart": "\(reload.needsRestart.joined(separator: ", "))"])
        }
        let old = live.snapshot
        let agents = Self.difference(old.agentList, config.agents, id: \.id)
        let reviewers = Self.difference(old.reviewerList, config.reviewers, id: \.id)
        let webhooks = Self.difference(old.webhooks, config.webhooks, id: \.name)
        guard !(agents.isEmpty && reviewers.isEmpty && webhooks.isEmpty) else { return reload }
        live.replace(with: config)
        reload.endedAgents = Set(agents.removed + agents.changed)
        var metadata: Logger.Metadata = ["file": "\(path)"]
        for (name, difference) in [("agents", agents), ("reviewers", reviewers), ("webhooks", webhooks)] where !difference.isEmpty {
            metadata[name] = "\(difference)"
        }
        logger.notice("configuration reloaded: agents, reviewers and webhooks", metadata: metadata)
        return reload
    }

    private func logRejected(_ errors: [String]) {
        logger.error(
            "configuration file has \(errors.count) error\(errors.count == 1 ? "" : "s"); keeping the agents, reviewers and webhooks in force",
            metadata: ["file": "\(path)", "errors": "\(errors.joined(separator: "\n"))"])
    }

    /// Entries added, removed and changed between two lists, by id.
    struct Difference: CustomStringConvertible {
        var added: [String] = []
        var removed: [String] = []
        var changed: [String] = []

        var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

        var description: String {
            [("added", added), ("removed", removed), ("changed", changed)].filter { !$0.1.isEmpty }
                .map { "\($0.0) \($0.1.joined(separator: " "))" }.joined(separator: "; ")
        }
    }

    static func difference<Entry: Equatable>(_ old: [Entry], _ new: [Entry], id: (Entry) -> String) -> Difference {
        let before = Dictionary(old.map { (id($0), $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(new.map { (id($0), $0) }, uniquingKeysWith: { first, _ in first })
        var difference = Difference()
        difference.added = after.keys.filter { before[$0] == nil }.sorted()
        difference.removed = before.keys.filter { after[$0] == nil }.sorted()
        difference.changed = after.keys.filter { before[$0] != nil && before[$0] != after[$0] }.sorted()
        return difference
    }

    /// The top-level keys, as the file spells them, that differ between `old` and `new` and that only a restart applies.
    static func restartKeys(_ old: GatewayConfig, _ new: GatewayConfig) -> [String] {
        var keys: [String] = []
        // `new` with each field looked at set back to `old`'s: what differs then is a key this list does not name yet.
        var rest = new
        func compare<Value: Equatable>(_ key: String, _ path: WritableKeyPath<GatewayConfig, Value>) {
            if old[keyPath: path] != new[keyPath: path] { keys.append(key) }
            rest[keyPath: path] = old[keyPath: path]
        }
        compare("listen", \.listen)
        compare("database", \.database)
        compare("data_directory", \.dataDirectory)
        compare("allowed_origins", \.allowedOrigins)
        compare("logging", \.logging)
        compare("limits", \.limits)
        compare("store_arguments", \.storeArguments)
        compare("servers", \.servers)
        compare("public_url", \.publicURL)
        compare("ui", \.ui)
        compare("slack", \.slack)
        compare("tracing", \.tracing)
        (rest.agents, rest.reviewers, rest.webhooks) = (old.agents, old.reviewers, old.webhooks)
        if rest != old { keys.append("other top-level settings") }
        return keys
    }
}
