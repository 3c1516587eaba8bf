import Foundation

/// The one thread that starts every child process, for the life of the process.
///
/// On Linux a child's parent is the *thread* that started it: a parent-death signal (``ParentDeath``) fires when that
/// thread ends, even though the process lives on. The threads of Swift's cooperative pool and of Dispatch come and go
/// (an idle Dispatch worker ends after a few seconds), so a child started on one of them could be killed while the
/// gateway runs. This thread never ends; ``Spawn`` hands it each `posix_spawn` and waits for the result.
final class SpawnThread: @unchecked Sendable {
    static let shared = SpawnThread()

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []

    private init() {
        let thread = Thread { [self] in serve() }
        thread.name = "tollgate-spawn"
        thread.start()
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    private final class Outcome<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }

    /// Runs `body` on this thread and returns what it returned (or throws what it threw); blocks the caller meanwhile.
    func run<T>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let outcome = Outcome<T>()
        let done = DispatchSemaphore(value: 0)
        condition.lock()
        jobs.append {
            outcome.result = Result { try body() }
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        return try outcome.result!.get()
    }
}
