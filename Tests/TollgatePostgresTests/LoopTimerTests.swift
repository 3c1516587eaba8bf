import Synchronization
import XCTest

@testable import TollgatePostgres

final class LoopTimerTests: XCTestCase {
    func testASleepLastsAtLeastItsDuration() async throws {
        let started = ContinuousClock.now
        try await LoopTimer.sleep(for: .milliseconds(120))
        XCTAssertGreaterThanOrEqual(started.duration(to: .now), .milliseconds(120))
    }

    func testACancelledSleepThrowsCancellationErrorAtOnce() async throws {
        let started = ContinuousClock.now
        let sleeper = Task { try await LoopTimer.sleep(for: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        sleeper.cancel()
        do {
            try await sleeper.value
            XCTFail("a cancelled sleep returned normally")
        } catch {
            XCTAssertTrue(error is CancellationError, "expected CancellationError, got \(error)")
        }
        XCTAssertLessThan(started.duration(to: .now), .seconds(10))
    }

    func testAScheduledBodyRunsOnceAfterItsDelayAndACancelledOneNever() async throws {
        let runs = Mutex<[String]>([])
        let started = ContinuousClock.now
        LoopTimer.schedule(in: .milliseconds(80)) { runs.withLock { $0.append("kept") } }
        let cancelled = LoopTimer.schedule(in: .milliseconds(80)) { runs.withLock { $0.append("cancelled") } }
        cancelled.cancel()
        while runs.withLock({ $0.isEmpty }) && started.duration(to: .now) < .seconds(10) {
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertGreaterThanOrEqual(started.duration(to: .now), .milliseconds(80))
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertEqual(runs.withLock { $0 }, ["kept"])
    }
}
