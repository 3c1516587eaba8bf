import Foundation
import Logging
import Synchronization
import TollgateCore
import TollgateSystem

#if canImport(Glibc)
    import Glibc
#endif

/// An MCP server running as a child process, speaking newline-delimited JSON-RPC on its stdin and stdout.
///
/// The child's environment is ``ChildEnvironment/mcpServer(adding:user:from:)``: a few of the gateway's variables by name
/// (`PATH`, `HOME`, the locale, ...) and the server's configured `env`, never the gateway's secrets. With a `user`, the
/// child runs as that OS user (``ChildUser``: through `setpriv` when the gateway runs as root).
///
/// The child runs in a process group of its own, so ``close()`` ends it and anything it started. It starts with default
/// signal dispositions and an empty signal mask (``Spawn``) and gets SIGKILL when the gateway dies, even by SIGKILL
/// (``ParentDeath``, through `setpriv`), and so does its process group (``ProcessGroupWatch``). Its stderr goes to the
/// log line by line, rate-limited (``StderrRateLimit``). Lines on its stdout that are not JSON-RPC are reported as
/// ``UpstreamEvent/garbage(_:)`` and skipped; a line longer than the message limit is skipped whole.
///
/// Blocking reads and writes run on threads of their own, never on the cooperative pool or an event loop.
public final class StdioUpstreamConnection: UpstreamConnection, Sendable {
    public let events: AsyncStream<UpstreamEvent>
    private let continuation: AsyncStream<UpstreamEvent>.Continuation
    /// What the reader has read ahead of the relay, bounded: past it, the reader stops reading the child's stdout.
    private let pending = PendingEvents()
    private let process: SpawnedProcess
    private let writer: DispatchQueue
    private let state = Mutex(State())
    private let logger: Logger
    private let description: String

    private struct State {
        var closing = false
        var exited = false
        var stdinOpen = true
    }

    private init(process: SpawnedProcess, description: String, logger: Logger) {
        (events, continuation) = AsyncStream.makeStream(of: UpstreamEvent.self, bufferingPolicy: .unbounded)
        self.process = process
        self.description = description
        self.logger = logger
        self.writer = DispatchQueue(label: "tollgate.stdio-upstream.\(process.pid)")
    }

    /// Starts the child and its reader threads.
    public static func start(
        _ command: StdioUpstream, maxMessageBytes: Int = 16 << 20, logger: Logger
    ) throws(UpstreamError) -> StdioUpstreamConnection {
        _ = ignoreSIGPIPE
        var user: ChildUser?
        var (program, arguments) = (command.command, command.arguments)
        if let name = command.user {
            // As that OS user (through setpriv when it is not ours), so it cannot read what only the gateway's user can.
            do {
                let account = try ChildUser.resolve(user: name, group: command.group)
                (program, arguments) = try account.command(command.command, command.arguments, group: command.group, diesWithParent: true)
                user = account
            } catch {
                throw .notSent("cannot start the upstream server `\(command.command)` as user `\(name)`: \(error)")
            }
        } else if ParentDeath.setpriv != nil {
            // Looked up in the gateway's PATH here, as posix_spawnp would, so a missing program still fails at once.
            guard let found = Spawn.resolve(command.command, directory: command.directory) else {
                throw .notSent("cannot start the upstream server `\(command.command)`: \(String(cString: strerror(ENOENT)))")
            }
            (program, arguments) = ParentDeath.command(found, command.arguments) ?? (found, command.arguments)
        }
        // Never the gateway's whole environment (its database URL, secrets and keys): an allowlist, and the server's `env`.
        let environment = ChildEnvironment.mcpServer(adding: command.environment, user: user)
        let process: SpawnedProcess
        do {
            process = try Spawn.start(
                program, arguments, environment: environment, directory: command.directory,
                stdin: .pipe, stdout: .pipe, stderr: .pipe, newProcessGroup: true)
        } catch {
            throw .notSent("cannot start the upstream server `\(command.command)`: \(error)")
        }
        // What the server starts in turn is in its group, which is killed too when the gateway dies.
        ProcessGroupWatch.shared.add(process.pid)
        var logger = logger
        logger[metadataKey: "upstream.pid"] = "\(process.pid)"
        let upstream = StdioUpstreamConnection(process: process, description: command.command, logger: logger)
        upstream.startReaders(maxMessageBytes: maxMessageBytes)
        logger.debug("upstream started", metadata: ["command": "\(command.command)", "user": "\(user?.name ?? "tollgate's own")"])
        return upstream
    }

    /// Writing to a pipe whose reader died must fail with EPIPE, not kill the gateway.
    private static let ignoreSIGPIPE: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    public var pid: pid_t { process.pid }

    public func send(_ message: JSONRPCMessage) async throws(UpstreamError) {
        guard let fd = process.stdin, state.withLock({ !$0.closing && !$0.exited && $0.stdinOpen }) else {
            throw .notSent("the upstream server `\(description)` is not running")
        }
        var line = message.singleLine
        line.append(0x0A)
        let bytes = line
        // A write waits its turn behind the others (a child that reads slowly fills its pipe): one given up meanwhile
        // (its task cancelled) is never written.
        let givenUp = Abandoned()
        let failure: WriteFailure? = await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<WriteFailure?, Never>) in
                writer.async {
                    guard !givenUp.flag.load(ordering: .acquiring) else { return done.resume(returning: .givenUp) }
                    done.resume(returning: Self.writeAll(fd, bytes))
                }
            }
        } onCancel: {
            givenUp.flag.store(true, ordering: .releasing)
        }
        if let failure, failure.givenUp { throw .notSent("the request was given up before it was written") }
        if let failure {
            state.withLock { $0.stdinOpen = false }
            // Only a write that failed before its first byte left nothing for the child to read.
            throw UpstreamError(
                "cannot write to the upstream server `\(description)`: \(failure.reason)", notSent: failure.bytesWritten == 0)
        }
    }

    private struct WriteFailure {
        var reason: String
        var bytesWritten: Int
        var givenUp = false

        static let givenUp = WriteFailure(reason: "given up", bytesWritten: 0, givenUp: true)
    }

    private final class Abandoned: Sendable {
        let flag = Atomic<Bool>(false)
    }

    public func taken(_ event: UpstreamEvent) { pending.leave(event.cost) }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> WriteFailure? {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return WriteFailure(reason: String(cString: strerror(errno)), bytesWritten: offset)
            }
            offset += written
        }
        return nil
    }

    /// Closes the child's stdin (the MCP way to ask a stdio server to exit), then sends SIGTERM and finally
    /// SIGKILL to its process group if it is still there.
    public func close() async {
        let alreadyClosing = state.withLock { state -> Bool in
            defer { state.closing = true }
            return state.closing
        }
        guard !alreadyClosing else { return }
        pending.close()
        writer.sync {
            if let fd = process.stdin { Glibc.close(fd) }
        }
        if await waitForExit(within: .seconds(2)) { return terminateGroup() }
        process.signal(SIGTERM)
        if await waitForExit(within: .seconds(2)) { return terminateGroup() }
        logger.warning("upstream did not stop on SIGTERM; killing it")
        process.signal(SIGKILL)
        _ = await waitForExit(within: .seconds(2))
    }

    /// Anything the server started and left behind in its group.
    private func terminateGroup() {
        kill(-process.pid, SIGKILL)
    }

    private func waitForExit(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if state.withLock({ $0.exited }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return state.withLock { $0.exited }
    }

    // MARK: - Reading

    private func startReaders(maxMessageBytes: Int) {
        let stdout = process.stdout!
        let stderr = process.stderr!
        let reader = Thread { [self] in
            readMessages(from: stdout, maxMessageBytes: maxMessageBytes)
            Glibc.close(stdout)
            let status = process.waitForExit()
            ProcessGroupWatch.shared.remove(process.pid)
            state.withLock { $0.exited = true }
            let reason = status >= 128 ? "was killed by signal \(status - 128)" : "exited with status \(status)"
            let closing = state.withLock { $0.closing }
            if !closing { logger.warning("upstream server \(reason)") }
            continuation.yield(.closed(reason: "the upstream server `\(description)` \(reason)"))
            continuation.finish()
        }
        reader.name = "tollgate-upstream-\(process.pid)"
        reader.start()
        let errors = Thread { [self] in
            var limit = StderrRateLimit()
            func reportSuppressed(_ count: Int) {
                guard count > 0 else { return }
                logger.warning("upstream stderr: … \(count) lines of stderr suppressed (more than \(limit.linesPerSecond) a second)")
            }
            LineReader.forEachLine(of: stderr, maxLineBytes: limit.maxLineBytes) { line, truncated in
                guard case .log(let suppressed) = limit.admit(at: .now) else { return }
                reportSuppressed(suppressed)
                logger.info("upstream stderr: \(limit.text(of: line, truncated: truncated))")
            }
            reportSuppressed(limit.finish())
            Glibc.close(stderr)
        }
        errors.name = "tollgate-upstream-stderr-\(process.pid)"
        errors.start()
    }

    private func readMessages(from fd: Int32, maxMessageBytes: Int) {
        LineReader.forEachLine(of: fd, maxLineBytes: maxMessageBytes) { line, truncated in
            let event: UpstreamEvent
            if truncated {
                event = .garbage("a line of more than \(maxMessageBytes) bytes")
            } else {
                guard line.contains(where: { $0 != 0x20 && $0 != 0x09 }) else { return }
                do {
                    event = .message(try JSONRPCMessage(parsing: line))
                } catch {
                    event = .garbage(String(decoding: line.prefix(200), as: UTF8.self))
                }
            }
            pending.enterBlocking(event.cost)
            continuation.yield(event)
        }
    }
}

/// Reads newline-delimited lines from a file descriptor with blocking reads (on a thread of the caller's).
public enum LineReader {
    /// Calls `body` with each line read from `fd` (without its `\n` or `\r\n`) until end of file. A line longer than
    /// `maxLineBytes` is reported once, with its first `maxLineBytes` bytes and `truncated` set, and the rest of it skipped.
    public static func forEachLine(of fd: Int32, maxLineBytes: Int, _ body: ([UInt8], _ truncated: Bool) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var line: [UInt8] = []
        var skipping = false
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                break
            }
            if count == 0 { break }
            var start = 0
            for index in 0..<count where buffer[index] == 0x0A {
                if !skipping {
                    line.append(contentsOf: buffer[start..<index])
                    if line.last == 0x0D { line.removeLast() }
                    if line.count > maxLineBytes { body(Array(line.prefix(maxLineBytes)), true) } else { body(line, false) }
                }
                skipping = false
                line.removeAll(keepingCapacity: true)
                start = index + 1
            }
            if !skipping {
                line.append(contentsOf: buffer[start..<count])
                if line.count > maxLineBytes {
                    body(Array(line.prefix(maxLineBytes)), true)
                    skipping = true
                    line = []
                }
            }
        }
        if !skipping, !line.isEmpty { body(line, false) }
    }
}
