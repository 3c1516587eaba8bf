import Foundation
import Testing

@testable import TollgateCore

/// The approval fold and its decisions, without a database.
@Suite struct ApprovalTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func requested(quorum: Int = 1, reviewers: [String] = [], timeout: TimeInterval = 3600) -> ApprovalRequested {
        ApprovalRequested(
            approvalID: UUID(), callID: UUID(), agent: "agent-a", grant: "g", session: "s", server: "pay", tool: "transfer",
            arguments: ["amount": 5], argumentsHash: "h", argumentsStorage: "full", policyHash: "p", rule: "tools.transfer", reason: nil,
            quorum: quorum, reviewers: reviewers, category: nil, requestedAt: start, expiresAt: start.addingTimeInterval(timeout))
    }

    func applying(_ approval: Approval, _ result: Result<[ApprovalEvent], ApprovalRefusal>) throws -> Approval {
        var next = approval
        for event in try result.get() { next.apply(event) }
        return next
    }

    @Test func oneGrantApprovesAQuorumOfOne() throws {
        let approval = Approval(requested())
        let approved = try applying(approval, approval.grant(by: "alice", comment: "fine", now: start))
        #expect(approved.status == .approved)
        #expect(approved.version == 2)
        #expect(approved.isUsable(at: start))
        #expect(!approved.isUsable(at: start.addingTimeInterval(3600)))
        #expect(
            approved.consume(by: UUID(), reservations: [], now: start.addingTimeInterval(3600))
                == .failure(.lapsed(expiresAt: start.addingTimeInterval(3600))))
        #expect(approved.decidedAt == start)
    }

    @Test func theSameReviewerTwiceDoesNotMakeAQuorumOfTwo() throws {
        var approval = Approval(requested(quorum: 2))
        approval = try applying(approval, approval.grant(by: "alice", comment: nil, now: start))
        #expect(approval.status == .pending)
        #expect(approval.grant(by: "alice", comment: nil, now: start) == .failure(.alreadyGranted(reviewer: "alice", granted: 1, quorum: 2)))
        // Even a duplicate event in the log (it cannot be appended, but a fold must be total) counts once.
        approval.apply(.granted(ApprovalGranted(approvalID: approval.id, reviewer: "alice", comment: nil, grantedAt: start)))
        #expect(approval.status == .pending)
        #expect(approval.grants.count == 1)
        approval = try applying(approval, approval.grant(by: "bob", comment: nil, now: start))
        #expect(approval.status == .approved)
        #expect(approval.grants.map(\.reviewer) == ["alice", "bob"])
    }

    @Test func theAgentCannotDecideItsOwnCall() {
        let approval = Approval(requested())
        #expect(approval.grant(by: "agent-a", comment: nil, now: start) == .failure(.selfApproval(agent: "agent-a")))
        #expect(approval.deny(by: "agent-a", reason: "x", now: start) == .failure(.selfApproval(agent: "agent-a")))
    }

    @Test func onlyNamedReviewersMayDecide() {
        let approval = Approval(requested(reviewers: ["alice"]))
        #expect(approval.grant(by: "mallory", comment: nil, now: start) == .failure(.notAReviewer(reviewer: "mallory", allowed: ["alice"])))
        #expect((try? approval.grant(by: "alice", comment: nil, now: start).get())?.count == 1)
    }

    @Test func aDecidedRequestRefusesFurtherDecisionsWithItsOutcome() throws {
        let approval = Approval(requested())
        let denied = try applying(approval, approval.deny(by: "bob", reason: "no", now: start))
        #expect(denied.status == .denied)
        guard case .failure(.alreadyDecided(let outcome)) = denied.grant(by: "alice", comment: nil, now: start) else {
            Issue.record("a grant after a denial must be refused")
            return
        }
        #expect(outcome.status == .denied)
        #expect(outcome.by == ["bob"])
        #expect(outcome.reason == "no")
    }

    @Test func aPendingRequestPastItsExpiryCountsAsExpiredAndCanBeExpiredOnce() throws {
        let approval = Approval(requested(timeout: 60))
        let later = start.addingTimeInterval(61)
        #expect(approval.status(at: start) == .pending)
        #expect(approval.status(at: later) == .expired)
        #expect(approval.expire(now: start).isEmpty)
        if case .failure(.alreadyDecided(let outcome)) = approval.grant(by: "alice", comment: nil, now: later) {
            #expect(outcome.status == .expired)
        } else {
            Issue.record("a grant after the expiry must be refused")
        }
        var expired = approval
        for event in approval.expire(now: later) { expired.apply(event) }
        #expect(expired.status == .expired)
        #expect(expired.expire(now: later).isEmpty)
    }

    @Test func anApprovalRunsOneCallOnce() throws {
        var approval = Approval(requested())
        approval = try applying(approval, approval.grant(by: "alice", comment: nil, now: start))
        let first = UUID()
        let used = try applying(approval, approval.consume(by: first, reservations: [], now: start))
        #expect(!used.isUsable(at: start))
        #expect(used.consume(by: UUID(), reservations: [], now: start) == .failure(.alreadyConsumed(callID: first)))
        #expect(Approval(requested()).consume(by: first, reservations: [], now: start) == .failure(.notApproved(status: .pending)))
    }

    @Test func theFoldOfTheEncodedEventsEqualsTheLiveState() throws {
        var live = Approval(requested(quorum: 2))
        var events: [ApprovalEvent] = [.requested(live.request)]
        for step in [live.grant(by: "alice", comment: "a", now: start)] {
            for event in try step.get() {
                live.apply(event)
                events.append(event)
            }
        }
        for event in try live.grant(by: "bob", comment: nil, now: start).get() {
            live.apply(event)
            events.append(event)
        }
        for event in try live.consume(by: UUID(), reservations: [], now: start).get() {
            live.apply(event)
            events.append(event)
        }
        #expect(live.status == .approved && !live.isUsable(at: start))
        let decoded = try events.map { try ApprovalEvent.decode(type: $0.type, data: try $0.encoded())! }
        #expect(decoded == events)
        #expect(Approval.fold(decoded) == live)
        #expect(try EventCoding.decode(Approval.self, from: EventCoding.encode(live)) == live)
    }
}

/// The hold-then-pending state machine.
@Suite struct HeldCallTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func approval(timeout: TimeInterval = 3600) -> Approval {
        Approval(
            ApprovalRequested(
                approvalID: UUID(), callID: UUID(), agent: "agent-a", grant: "g", session: "s", server: "pay", tool: "transfer", arguments: nil,
                argumentsHash: "h", argumentsStorage: "hash", policyHash: "p", rule: "r", reason: nil, quorum: 1, reviewers: [], category: nil,
                requestedAt: start, expiresAt: start.addingTimeInterval(timeout)))
    }

    @Test func aPendingRequestWaitsWithProgressThenEndsPendingWhenTheHoldIsOver() {
        var held = HeldCall(startedAt: start, hold: 12, progressEvery: 5)
        let pending = approval()
        guard case .wait(let until, let progress?) = held.observe(pending, now: start) else {
            Issue.record("the first look reports progress and waits")
            return
        }
        #expect(until == start.addingTimeInterval(5))
        #expect(progress.total == 12)
        #expect(progress.message.contains(pending.id.uuidString.lowercased()))
        // Nothing new before the next tick: no progress.
        #expect(held.observe(pending, now: start.addingTimeInterval(1)) == .wait(until: start.addingTimeInterval(5), progress: nil))
        guard case .wait(let next, let second?) = held.observe(pending, now: start.addingTimeInterval(5)) else {
            Issue.record("a tick reports progress")
            return
        }
        #expect(next == start.addingTimeInterval(10))
        #expect(second.progress > progress.progress)
        guard case .wait(let last, _) = held.observe(pending, now: start.addingTimeInterval(11)) else {
            Issue.record("still within the hold")
            return
        }
        #expect(last == start.addingTimeInterval(12))
        #expect(held.observe(pending, now: start.addingTimeInterval(12)) == .pending)
    }

    @Test func progressNeverGoesBackwardsEvenWithinOneMillisecond() {
        var held = HeldCall(startedAt: start, hold: 30, progressEvery: 5)
        var request = approval()
        guard case .wait(_, let first?) = held.observe(request, now: start) else { return #expect(Bool(false)) }
        request.apply(.granted(ApprovalGranted(approvalID: request.id, reviewer: "x", comment: nil, grantedAt: start)))
        // A quorum of one is now approved: run. A quorum of two would report the grant at once.
        #expect(held.observe(request, now: start) == .run)
        var two = Approval(
            ApprovalRequested(
                approvalID: UUID(), callID: UUID(), agent: "a", grant: "g", session: "s", server: "p", tool: "t", arguments: nil, argumentsHash: "h",
                argumentsStorage: "hash", policyHash: "p", rule: "r", reason: nil, quorum: 2, reviewers: [], category: nil, requestedAt: start,
                expiresAt: start.addingTimeInterval(60)))
        var held2 = HeldCall(startedAt: start, hold: 30, progressEvery: 5)
        guard case .wait(_, let a?) = held2.observe(two, now: start) else { return #expect(Bool(false)) }
        two.apply(.granted(ApprovalGranted(approvalID: two.id, reviewer: "x", comment: nil, grantedAt: start)))
        guard case .wait(_, let b?) = held2.observe(two, now: start) else { return #expect(Bool(false)) }
        #expect(b.progress > a.progress)
        #expect(b.message.contains("1 of 2"))
        #expect(first.progress >= 0)
    }

    @Test func decisionsEndTheHold() {
        var held = HeldCall(startedAt: start, hold: 30)
        var denied = approval()
        denied.apply(.denied(ApprovalDenied(approvalID: denied.id, reviewer: "bob", reason: "no", deniedAt: start)))
        #expect(held.observe(denied, now: start) == .refuse(.denied(by: "bob", reason: "no")))

        let lapsing = approval(timeout: 10)
        #expect(held.observe(lapsing, now: start.addingTimeInterval(10)) == .expire)
        var expired = lapsing
        expired.apply(.expired(ApprovalExpired(approvalID: lapsing.id, expiredAt: start.addingTimeInterval(10))))
        #expect(held.observe(expired, now: start.addingTimeInterval(10)) == .refuse(.expired(at: start.addingTimeInterval(10))))

        var used = approval()
        used.apply(.granted(ApprovalGranted(approvalID: used.id, reviewer: "x", comment: nil, grantedAt: start)))
        #expect(held.observe(used, now: start) == .run)
        used.apply(.consumed(ApprovalConsumed(approvalID: used.id, callID: UUID(), reservations: [], consumedAt: start)))
        #expect(held.observe(used, now: start) == .requestAgain)
    }

    @Test func theWaitNeverOutlastsTheExpiry() {
        var held = HeldCall(startedAt: start, hold: 45, progressEvery: 60)
        guard case .wait(let until, _) = held.observe(approval(timeout: 20), now: start) else { return #expect(Bool(false)) }
        #expect(until == start.addingTimeInterval(20))
    }
}
