import Foundation
import Logging
import Synchronization
import TollgateCore

/// The policy in force for each upstream server, read from the policy files the configuration names, and reloaded
/// when a file changes or on SIGHUP.
///
/// A changed file is applied only once it has settled: read with the same content twice, `settle` apart, so that a
/// file caught half-written (a YAML file cut at a line boundary is often valid, and looser than the whole) is never
/// applied; a writer that pauses longer than `settle` mid-file can still be caught, so operators replace policy files
/// atomically (write a new file, then rename it over the old one). At startup a file is applied as read.
///
/// A content that fails validation keeps the policy in force and logs every error, once; a server whose policy never
/// loaded has none: it lists no tools and refuses every call (fail closed). When a server's policy changes after
/// startup, including the first policy of a server that had none, `onChange` is called with the server's name (the
/// gateway then tells connected agents that the tool list changed).
final class PolicyBook: Sendable {
    /// How often the files' size and modification time are looked at, by ``watch()``.
    static let pollInterval: Duration = .milliseconds(500)
    /// How long a changed content must stay the same before it is applied.
    static let defaultSettle: Duration = .seconds(1)

    /// What reading a policy file gave.
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

    /// What the book knows of one server's file.
    private struct Watched {
        var path: String
        /// The size and modification time when it was last read.
        var stat: Stat?
        /// The content last decided on (applied, or rejected and reported): not looked at again until it changes.
        var decided: Content?
        /// A content read that differs from `decided`, and when it was first read; applied once read again unchanged
        /// at least `settle` later.
        var pending: (content: Content, since: ContinuousClock.Instant)?
    }

    private let policies = Mutex<[String: CompiledPolicy]>([:])
    /// Held for the whole of a check, so the poll and SIGHUP never check at once.
    private let watched: Mutex<[String: Watched]>
    private let settle: Duration
    private let logger: Logger
    private let onChange = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// `files`: server name → policy file path.
    init(files: [String: String], settle: Duration = PolicyBook.defaultSettle, logger: Logger) {
        watched = Mutex(files.mapValues { Watched(path: $0) })
        self.settle = settle
        self.logger = logger
    }

    /// The policy in force for `server`; `nil` when it never loaded.
    func policy(for server: String) -> CompiledPolicy? {
        policies.withLock { $0[server] }
    }

    func setOnChange(_ body: @escaping @Sendable (String) -> Void) {
        onChange.withLock { $0 = body }
    }

    /// Loads every file as it is now (at startup); returns the errors of those that failed (each with file:line:column).
    @discardableResult
    func loadAll() -> [String: [SourceDiagnostic]] {
        check(force: true, now: .now, initial: true)
    }

    /// Looks at the files whose size or modification time changed, or that have a content waiting to settle (every
    /// file, with `force`), and applies each content that has settled.
    func reloadChanged(force: Bool = false) {
        check(force: force, now: .now, initial: false)
    }

    /// Looks at the files every ``pollInterval`` until cancelled.
    func watch() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.pollInterval)
            reloadChanged()
        }
    }

    @discardableResult
    private func check(force: Bool, now: ContinuousClock.Instant, initial: Bool) -> [String: [SourceDiagnostic]] {
        var failures: [String: [SourceDiagnostic]] = [:]
        var changed: [String] = []
        watched.withLock { watched in
            for server in watched.keys.sorted() {
                guard var file = watched[server] else { continue }
                defer { watched[server] = file }
                let stat = Stat(path: file.path)
                if !force, file.pending == nil, file.stat == stat { continue }
                file.stat = stat
                let content = Self.read(file.path)
                if content == file.decided {
                    file.pending = nil
                    continue
                }
                if !initial {
                    guard let pending = file.pending, pending.content == content, pending.since.duration(to: now) >= settle else {
                        if file.pending?.content != content { file.pending = (content, now) }
                        continue
                    }
                }
                file.pending = nil
                file.decided = content
                switch apply(content, server: server, path: file.path) {
                case .rejected(let diagnostics): failures[server] = diagnostics
                case .changed where !initial: changed.append(server)
                case .changed, .unchanged: break
                }
            }
        }
        if let onChange = onChange.withLock({ $0 }) {
            for server in changed { onChange(server) }
        }
        return failures
    }

    private static func read(_ path: String) -> Content {
        do {
            return .bytes(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            return .unreadable(error.localizedDescription)
        }
    }

    private enum Applied {
        case changed
        case unchanged
        case rejected([SourceDiagnostic])
    }

    /// Validates and applies one content: whether the policy in force changed, or the errors that kept it.
    private func apply(_ content: Content, server: String, path: String) -> Applied {
        let current = policy(for: server)
        let diagnostics: [SourceDiagnostic]
        switch content {
        case .bytes(let data):
            do {
                let policy = try PolicyLoader.load(data, fileName: path)
                guard current?.contentHash != policy.contentHash else { return .unchanged }
                policies.withLock { $0[server] = policy }
                let metadata: Logger.Metadata = ["server": "\(server)", "file": "\(path)", "policy": "\(policy.contentHash)"]
                if current != nil {
                    logger.notice("policy reloaded", metadata: metadata)
                } else {
                    logger.info("policy loaded", metadata: metadata)
                }
                return .changed
            } catch {
                // PolicyLoader throws only SourceValidationError.
                diagnostics = error.diagnostics
            }
        case .unreadable(let why):
            diagnostics = [SourceDiagnostic(code: .syntax, file: path, location: nil, path: "", message: "cannot read the policy file: \(why)")]
        }
        let kept = current.map { "keeping policy \($0.contentHash)" } ?? "the server lists no tools and every call to it is refused until it loads"
        logger.error(
            "policy file has errors; \(kept)",
            metadata: ["server": "\(server)", "file": "\(path)", "errors": "\(diagnostics.map(\.description).joined(separator: "\n"))"])
        return .rejected(diagnostics)
    }

    /// What `server`'s first recorded listing does, as its policy says (`first_listing`); nil when no policy is loaded.
    @Sendable func firstListing(_ server: String) -> Policy.FirstListing? {
        policy(for: server)?.policy.firstListing
    }
}
