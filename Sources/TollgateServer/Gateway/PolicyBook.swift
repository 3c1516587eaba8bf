import Foundation
import Logging
import Synchronization
import TollgateCore

/// The policy in force for each upstream server, read from the policy files the configuration names, and reloaded
/// when a file changes or on SIGHUP.
///
/// A reload that fails validation keeps the policy in force and logs every error; a server whose policy never
/// loaded has none, and every call to it is denied (fail closed). A successful reload that changes a policy calls
/// `onChange` with the server's name (the gateway then tells connected agents that the tool list changed).
final class PolicyBook: Sendable {
    struct Entry: Sendable {
        var policy: CompiledPolicy
        var path: String
        var modified: Date?
        var size: Int
    }

    private let files: [String: String]
    private let entries = Mutex<[String: Entry]>([:])
    private let logger: Logger
    private let onChange = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// `files`: server name → policy file path.
    init(files: [String: String], logger: Logger) {
        self.files = files
        self.logger = logger
    }

    /// The policy in force for `server`; `nil` when it never loaded.
    func policy(for server: String) -> CompiledPolicy? {
        entries.withLock { $0[server]?.policy }
    }

    func setOnChange(_ body: @escaping @Sendable (String) -> Void) {
        onChange.withLock { $0 = body }
    }

    /// Loads every file; returns the errors of those that failed (each with file:line:column).
    @discardableResult
    func loadAll() -> [String: [PolicyDiagnostic]] {
        var failures: [String: [PolicyDiagnostic]] = [:]
        for (server, path) in files.sorted(by: { $0.key < $1.key }) {
            if let diagnostics = load(server: server, path: path, force: true) { failures[server] = diagnostics }
        }
        return failures
    }

    /// Re-reads the files whose size or modification time changed (or all of them, with `force`).
    func reloadChanged(force: Bool = false) {
        for (server, path) in files.sorted(by: { $0.key < $1.key }) {
            _ = load(server: server, path: path, force: force)
        }
    }

    private func load(server: String, path: String, force: Bool) -> [PolicyDiagnostic]? {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let modified = attributes?[.modificationDate] as? Date
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        let current = entries.withLock { $0[server] }
        if !force, let current, current.modified == modified, current.size == size { return nil }
        let diagnostics: [PolicyDiagnostic]
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let policy = try PolicyLoader.load(data, fileName: path)
            let changed = current?.policy.contentHash != policy.contentHash
            entries.withLock { $0[server] = Entry(policy: policy, path: path, modified: modified, size: size) }
            if changed {
                if current != nil {
                    logger.notice("policy reloaded", metadata: ["server": "\(server)", "file": "\(path)", "policy": "\(policy.contentHash)"])
                    onChange.withLock { $0 }?(server)
                } else {
                    logger.info("policy loaded", metadata: ["server": "\(server)", "file": "\(path)", "policy": "\(policy.contentHash)"])
                }
            }
            return nil
        } catch let error as PolicyValidationError {
            diagnostics = error.diagnostics
        } catch {
            diagnostics = [
                PolicyDiagnostic(
                    code: .syntax, file: path, location: nil, path: "", message: "cannot read the policy file: \(error.localizedDescription)")
            ]
        }
        // Remember the failed version, so an unchanged bad file is not re-read and re-reported every poll.
        entries.withLock { entries in
            if var entry = entries[server] {
                entry.modified = modified
                entry.size = size
                entries[server] = entry
            }
        }
        let kept = current.map { "keeping policy \($0.policy.contentHash)" } ?? "calls to this server are denied until it loads"
        logger.error(
            "policy file has errors; \(kept)",
            metadata: ["server": "\(server)", "file": "\(path)", "errors": "\(diagnostics.map(\.description).joined(separator: "\n"))"])
        return diagnostics
    }
}
