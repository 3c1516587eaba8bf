import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts child processes with `posix_spawn`: standard streams wired to `/dev/null`, a file, a pipe, or ours;
/// every other descriptor closed in the child; optionally in a process group of its own, so the whole tree can
/// be signalled at once. Used for PostgreSQL's programs and for stdio MCP servers.
///
/// Every child starts with every signal at its default disposition and an empty signal mask, whatever this process
/// ignores or blocks (the gateway ignores SIGPIPE, and an ignored signal survives `exec`): a child that writes to a
/// closed pipe dies of SIGPIPE as it would from a shell, and SIGTERM reaches it. Every child is started by one thread
/// that lives as long as the process (``SpawnThread``), so a parent-death signal (``ParentDeath``) fires when the
/// process ends, not when some pool thread does.
///
/// Foundation's `Process` reaps children from a run-loop source, which did not run under XCTest's async runner
/// (children stayed zombies and `waitUntilExit` never returned); here the caller reaps with `waitpid`.
///
/// ```swift
/// let child = try Spawn.start("/usr/bin/env", ["true"], stdout: .pipe)
/// let status = child.waitForExit()
/// ```
public enum Spawn {
    /// Where a child's standard stream goes.
    public enum Stream: Sendable, Equatable {
        /// `/dev/null`.
        case null
        /// A file, created or truncated.
        case file(String)
        /// A new pipe; the parent's end is in `SpawnedProcess`.
        case pipe
        /// The same descriptor as this process.
        case inherit
    }

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Starts `program` (looked up on `PATH` when it has no `/`) with `arguments`.
    ///
    /// - Parameters:
    ///   - environment: the child's whole environment; `nil` passes ours (see ``ChildEnvironment`` for what a child
    ///     of the gateway should get instead).
    ///   - directory: the child's working directory; `nil` keeps ours.
    ///   - newProcessGroup: put the child in a process group of its own (its pid), for `signalGroup`.
    public static func start(
        _ program: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        stdin: Stream = .null, stdout: Stream = .inherit, stderr: Stream = .inherit, newProcessGroup: Bool = false
    ) throws -> SpawnedProcess {
        try SpawnThread.shared.run {
            try startHere(
                program, arguments, environment: environment, directory: directory, stdin: stdin, stdout: stdout, stderr: stderr,
                newProcessGroup: newProcessGroup)
        }
    }

    /// `program` as `posix_spawnp` would find it for a child that starts in `directory` (ours when nil): itself when it
    /// has a `/`, else the first file of that name in `PATH` (this process's, by default); nil when that is not an
    /// executable file. Relative paths stay relative (to `directory`, where the child resolves them).
    public static func resolve(
        _ program: String, directory: String? = nil, path: String? = ProcessInfo.processInfo.environment["PATH"]
    ) -> String? {
        func executable(_ candidate: String) -> Bool {
            let full = candidate.hasPrefix("/") || directory == nil ? candidate : directory! + "/" + candidate
            return FileManager.default.isExecutableFile(atPath: full)
        }
        if program.contains("/") { return executable(program) ? program : nil }
        let folders = (path ?? ChildEnvironment.defaultPath).split(separator: ":", omittingEmptySubsequences: false)
        return folders.map { ($0.isEmpty ? "." : String($0)) + "/" + program }.first(where: executable)
    }

    private static func startHere(
        _ program: String, _ arguments: [String], environment: [String: String]?, directory: String?,
        stdin: Stream, stdout: Stream, stderr: Stream, newProcessGroup: Bool
    ) throws -> SpawnedProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var parentEnds: [Int32?] = [nil, nil, nil]
        var childEnds: [Int32] = []
        defer { childEnds.forEach { close($0) } }
        func failAndClose(_ message: String) -> Failure {
            parentEnds.compactMap { $0 }.forEach { close($0) }
            return Failure(description: message)
        }
        for (target, stream) in [stdin, stdout, stderr].enumerated() {
            let fd = Int32(target)
            switch stream {
            case .null:
                posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, fd, path, target == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            case .inherit:
                break
            case .pipe:
                var ends: [Int32] = [-1, -1]
                guard pipe(&ends) == 0 else { throw failAndClose("pipe: \(String(cString: strerror(errno)))") }
                // Close-on-exec, so children spawned by other threads do not inherit our ends.
                ends.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
                // stdin: the child reads ends[0]; stdout/stderr: the child writes ends[1].
                let (child, parent) = target == 0 ? (ends[0], ends[1]) : (ends[1], ends[0])
                childEnds.append(child)
                parentEnds[target] = parent
                posix_spawn_file_actions_adddup2(&actions, child, fd)
            }
        }
        if let closeFrom = GlibcExtras.addCloseFrom { _ = closeFrom(&actions, 3) }
        if let directory {
            guard let addChdir = GlibcExtras.addChdir else { throw failAndClose("this C library cannot set a child's directory") }
            _ = addChdir(&actions, directory)
        }
        // Default dispositions for every signal, and nothing blocked. Every bit set by hand: glibc's sigfillset leaves out
        // its own signals 32 and 33, which its posix_spawn would then set to SIG_IGN in the child, and an ignored signal
        // survives exec.
        var allSignals = sigset_t()
        withUnsafeMutableBytes(of: &allSignals) { $0.initializeMemory(as: UInt8.self, repeating: 0xFF) }
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var flags = Int32(POSIX_SPAWN_SETSIGDEF) | Int32(POSIX_SPAWN_SETSIGMASK)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer {
            argv.forEach { free($0) }
            envp?.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result: Int32
        if let envp {
            result = envp.withUnsafeBufferPointer { environmentPointer in
                spawn(&pid, program, &actions, &attributes, argv, UnsafeMutablePointer(mutating: environmentPointer.baseAddress!))
            }
        } else {
            result = spawn(&pid, program, &actions, &attributes, argv, environ)
        }
        guard result == 0 else { throw failAndClose("cannot start \(program): \(String(cString: strerror(result)))") }
        return SpawnedProcess(pid: pid, stdin: parentEnds[0], stdout: parentEnds[1], stderr: parentEnds[2], processGroup: newProcessGroup)
    }

    private static func spawn(
        _ pid: UnsafeMutablePointer<pid_t>, _ program: String, _ actions: UnsafePointer<posix_spawn_file_actions_t>,
        _ attributes: UnsafePointer<posix_spawnattr_t>, _ argv: [UnsafeMutablePointer<CChar>?],
        _ envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    ) -> Int32 {
        program.contains("/")
            ? posix_spawn(pid, program, actions, attributes, argv, envp) : posix_spawnp(pid, program, actions, attributes, argv, envp)
    }

    /// Runs a program to completion with its output (stdout and stderr together) in a temporary file, and
    /// returns its exit status and that output. The output goes to a file, not a pipe, because a program such
    /// as `pg_ctl start` leaves a server running that would inherit the pipe and hold it open. `environment` is the
    /// child's whole environment, as for `start` (`nil` passes ours).
    public static func run(
        _ program: String, _ arguments: [String], environment: [String: String]? = nil
    ) throws -> (status: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString).log").path
        defer { unlink(outputPath) }
        let child = try start(program, arguments, environment: environment, stdin: .null, stdout: .file(outputPath), stderr: .file(outputPath))
        let status = child.waitForExit()
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}

/// A child started by `Spawn.start`: its pid and the parent's ends of its pipes (owned by the caller).
public struct SpawnedProcess: Sendable {
    public let pid: pid_t
    public let stdin: Int32?
    public let stdout: Int32?
    public let stderr: Int32?
    let processGroup: Bool

    /// Blocks until the child exits and reaps it; returns the exit code, or 128 + the signal that ended it.
    public func waitForExit() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return Self.exitCode(status)
    }

    /// Waits for the exit on a thread of its own, so no shared thread blocks in `waitpid`.
    public func exitStatus() async -> Int32 {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: waitForExit()) }
            thread.name = "tollgate-wait-\(pid)"
            thread.start()
        }
    }

    /// Sends `signal` to the child's process group when it has one, else to the child alone.
    public func signal(_ signal: Int32) {
        kill(processGroup ? -pid : pid, signal)
    }

    /// WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
    static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

/// glibc functions that Swift's Glibc module hides behind `_GNU_SOURCE`, looked up at run time.
enum GlibcExtras {
    typealias FileActions = UnsafeMutablePointer<posix_spawn_file_actions_t>?

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34): close every descriptor from N in the child.
    static let addCloseFrom: (@convention(c) (FileActions, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (FileActions, Int32) -> Int32).self)
    }()

    /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29): the child's working directory.
    static let addChdir: (@convention(c) (FileActions, UnsafePointer<CChar>) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (FileActions, UnsafePointer<CChar>) -> Int32).self)
    }()
}
