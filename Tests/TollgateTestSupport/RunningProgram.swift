import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A program started by a test (the `tollgate` binary, a Python MCP peer), with stdout and stderr captured in
/// files, so it can be signalled, waited for with a time limit, and its output read at any moment.
///
/// ```swift
/// let serve = try RunningProgram(RunningProgram.tollgateBinary, ["serve", "--listen", "127.0.0.1:9000"])
/// defer { serve.kill() }
/// serve.signal(SIGTERM)
/// XCTAssertEqual(try serve.wait(timeout: .seconds(10)), 0)
/// ```
public final class RunningProgram: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public let pid: pid_t
    public let arguments: [String]
    private let stdoutPath: String
    private let stderrPath: String
    private var status: Int32?

    /// Starts `program` with `arguments`; `environment` entries are added to (or override) this process's.
    public init(_ program: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) throws {
        self.arguments = [program] + arguments
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-program-\(UUID().uuidString)").path
        stdoutPath = base + ".out"
        stderrPath = base + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so `kill()` also ends whatever it started.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let argv: [UnsafeMutablePointer<CChar>?] = self.arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard result == 0 else { throw Failure(description: "cannot start \(program): \(String(cString: strerror(result)))") }
        self.pid = pid
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    /// The `tollgate` binary that `swift build` put beside the test bundle.
    public static var tollgateBinary: String {
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [folder.appendingPathComponent("tollgate").path]
        // Under some runners arguments[0] is the bundle inside the build folder.
        candidates.append(folder.deletingLastPathComponent().appendingPathComponent("tollgate").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    public var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public func signal(_ signal: Int32) {
        if status == nil { Glibc.kill(pid, signal) }
    }

    /// SIGKILL to the whole process group, and reaps the child.
    public func kill() {
        guard status == nil else { return }
        Glibc.kill(-pid, SIGKILL)
        _ = try? wait(timeout: .seconds(5))
    }

    /// Whether it is still running (reaps it if it has exited).
    public var isRunning: Bool {
        (try? poll()) == nil
    }

    /// The exit code (128 + signal number when killed by a signal), or throws after `timeout`.
    @discardableResult
    public func wait(timeout: Duration) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try poll() { return status }
            usleep(10_000)
        }
        throw Failure(description: "\(arguments.joined(separator: " ")) still running after \(timeout)\nstderr:\n\(standardError.suffix(4000))")
    }

    private func poll() throws -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, WNOHANG)
        if result == 0 { return nil }
        guard result == pid else { throw Failure(description: "waitpid: \(String(cString: strerror(errno)))") }
        let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        status = code
        return code
    }

    /// Runs to completion and returns (exit code, stdout, stderr).
    public static func run(
        _ program: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let running = try RunningProgram(program, arguments, environment: environment)
        let status = try running.wait(timeout: timeout)
        return (status, running.standardOutput, running.standardError)
    }
}
