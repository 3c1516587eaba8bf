import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Kills the process groups of the gateway's stdio servers when the gateway ends, however it ends: what a server
/// started in turn (`npx` starting `node`, a shell starting a helper) is in the server's group, and a parent-death
/// signal (``ParentDeath``) reaches only the server itself.
///
/// A small `/bin/sh` watcher, started with the first group and in a process group of its own, reads lines from a pipe
/// whose other end only the gateway holds: `+PGID` when a server starts, `-PGID` when it has been reaped. When the
/// gateway ends (exit, crash or SIGKILL) the kernel closes that end, the watcher reads end-of-file, sends SIGKILL to every
/// group still listed, and exits. A watcher that died is started again on the next change, with every group listed.
///
/// ```swift
/// ProcessGroupWatch.shared.add(child.pid)      // a child started with newProcessGroup: true
/// ProcessGroupWatch.shared.remove(child.pid)   // once it has been reaped
/// ```
public final class ProcessGroupWatch: @unchecked Sendable {
    public static let shared = ProcessGroupWatch()

    /// The watcher: keeps the listed groups in `g` (" 1 2 3 "), and kills them all at end of input.
    static let script = """
        g=" "
        while read -r l; do
          case $l in
            +*) g="$g${l#+} " ;;
            -*) n=${l#-}; case $g in *" $n "*) g="${g%% $n *} ${g#* $n }" ;; esac ;;
          esac
        done
        for n in $g; do kill -KILL "-$n" 2>/dev/null; done
        """

    private let lock = NSLock()
    private var groups: Set<pid_t> = []
    private var watcher: SpawnedProcess?
    private var unavailable = false

    /// Lists a process group (a child started with `newProcessGroup`, so its pid) to be killed when the gateway ends.
    public func add(_ group: pid_t) {
        lock.lock()
        defer { lock.unlock() }
        groups.insert(group)
        send("+\(group)\n")
    }

    /// Takes a group off the list, once its leader has been reaped (so a reused pid is never killed).
    public func remove(_ group: pid_t) {
        lock.lock()
        defer { lock.unlock() }
        guard groups.remove(group) != nil else { return }
        send("-\(group)\n")
    }

    /// With the lock held.
    private func send(_ line: String) {
        if let watcher, let fd = watcher.stdin, Self.write(fd, line) { return }
        restart()
    }

    /// With the lock held: a new watcher, told every group listed.
    private func restart() {
        if let fd = watcher?.stdin { close(fd) }
        watcher = nil
        guard !unavailable else { return }
        let process: SpawnedProcess
        do {
            process = try Spawn.start(
                ParentDeath.shell, ["-c", Self.script, "tollgate-group-watch"], environment: ChildEnvironment.base(), stdin: .pipe,
                stdout: .null, stderr: .null, newProcessGroup: true)
        } catch {
            unavailable = true
            return
        }
        let reaper = Thread { _ = process.waitForExit() }
        reaper.name = "tollgate-group-watch-\(process.pid)"
        reaper.start()
        watcher = process
        // If this fails the watcher died already, and the next change starts another.
        if let fd = process.stdin { _ = Self.write(fd, groups.map { "+\($0)\n" }.joined()) }
    }

    /// Writes all of `text` (the gateway ignores SIGPIPE: a dead watcher is EPIPE); false if it could not.
    private static func write(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }
}
