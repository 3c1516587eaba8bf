import ArgumentParser
import Foundation

/// `tollgate-bench fsync`: how long the disk takes to make one small write durable (`fdatasync`), the floor under
/// every durable commit. PostgreSQL's WAL flush is such a write, so a decision's commit can never be faster than this,
/// and the disk's slowest flushes show up in the gateway's p99.
struct FsyncBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsync",
        abstract: "Time 8 KiB writes each followed by fdatasync, in a file of the given folder; print the distribution and the stalls.")

    @Option(help: "How long to measure, in seconds (1 to 600).")
    var seconds = 10.0

    @Option(help: "The folder to write in (the one the database's data lives on).")
    var directory = NSTemporaryDirectory()

    @Option(help: "A flush slower than this many milliseconds is listed as a stall.")
    var stallMilliseconds = 50.0

    func validate() throws {
        guard (1...600).contains(seconds) else { throw ValidationError("--seconds must be from 1 to 600") }
        guard stallMilliseconds > 0 else { throw ValidationError("--stall-milliseconds must be positive") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--directory must be an existing folder: \(directory)")
        }
    }

    func run() throws {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("tollgate-fsync-\(getpid())").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer {
            close(fd)
            unlink(path)
        }
        // The file is written whole and flushed first, so each timed flush writes data, not the file's growth.
        let blocks = 1024
        var block = [UInt8](repeating: 0, count: 8192)
        for index in 0..<blocks {
            guard pwrite(fd, &block, block.count, off_t(index * block.count)) == block.count else { throw ValidationError("write failed") }
        }
        guard fsync(fd) == 0 else { throw ValidationError("fsync failed: \(String(cString: strerror(errno)))") }

        let clock = ContinuousClock()
        let start = clock.now
        let end = start + .milliseconds(Int(seconds * 1000))
        var latencies: [Double] = []
        var stalls: [(at: Double, milliseconds: Double)] = []
        while clock.now < end {
            block[latencies.count % block.count] &+= 1
            guard pwrite(fd, &block, block.count, off_t((latencies.count % blocks) * block.count)) == block.count else {
                throw ValidationError("write failed")
            }
            let before = clock.now
            guard fdatasync(fd) == 0 else { throw ValidationError("fdatasync failed: \(String(cString: strerror(errno)))") }
            let milliseconds = (clock.now - before).seconds * 1000
            latencies.append(milliseconds)
            if milliseconds > stallMilliseconds { stalls.append((at: (before - start).seconds, milliseconds: milliseconds)) }
        }
        latencies.sort()
        print("fsync bench: 8 KiB pwrite + fdatasync in \(directory), \(latencies.count) flushes in \(seconds) s")
        print(
            String(
                format: "  per flush: p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.1f ms", latencies.percentile(0.5), latencies.percentile(0.99),
                latencies.percentile(0.999), latencies.last ?? 0))
        let stalled = stalls.reduce(0) { $0 + $1.milliseconds }
        print(
            String(
                format: "  stalls over %.0f ms: %d, %.1f%% of the time stalled", stallMilliseconds, stalls.count, stalled / (seconds * 10)))
        for stall in stalls.prefix(20) { print(String(format: "    at %6.2f s: %.0f ms", stall.at, stall.milliseconds)) }
    }
}
