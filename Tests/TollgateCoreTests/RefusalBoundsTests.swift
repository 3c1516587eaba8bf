import Foundation
import Testing

@testable import TollgateCore

/// What a refused call's event keeps, and the per-agent budget of refusals recorded one by one, without a database.
@Suite struct RefusalBoundsTests {
    func decided(arguments: JSONValue, storage: ArgumentStorage = .full, requestID: String = "7", tool: String = "echo") -> ToolCallDecided {
        ToolCallDecided(
            callID: UUID(), agent: "a", grant: "g", session: "s", server: "srv", tool: tool, requestID: requestID,
            arguments: storage == .full ? arguments : .array([]), argumentsHash: ToolCallDecided.hash(arguments: arguments),
            argumentsStorage: storage.rawValue, decision: "deny", reason: "no", retryAfter: nil, rule: "tools.echo", policyHash: "sha256:00",
            category: nil, reservations: [], decisionMicros: 1, decidedAt: Date(timeIntervalSince1970: 1_764_655_561))
    }

    @Test func argumentsOverTheBoundKeepTheirSizeAndCappedKeysOnly() throws {
        var members: [String: JSONValue] = ["text": .string(String(repeating: "x", count: 10_000))]
        for n in 0..<40 { members["k\(n)" + String(repeating: "é", count: n == 0 ? 100 : 1)] = .number(Double(n)) }
        let arguments = JSONValue.object(members)
        let size = arguments.canonicalJSON.utf8.count
        var event = decided(
            arguments: arguments, requestID: "\"" + String(repeating: "i", count: 400) + "\"", tool: String(repeating: "t", count: 300))
        event.bound(arguments: arguments, canonicalBytes: size, maxBytes: 4096)
        #expect(event.arguments == nil)
        #expect(event.argumentsStorage == "summary")
        let summary = try #require(event.argumentsSummary)
        #expect(summary.bytes == size)
        #expect(summary.keys.count == ArgumentsSummary.maxKeys && summary.keysOmitted == 41 - ArgumentsSummary.maxKeys)
        #expect(summary.keys.allSatisfy { $0.utf8.count <= ArgumentsSummary.maxKeyBytes })
        #expect(summary.keys.first?.hasSuffix("…") == true, "a long key is cut on a character boundary: \(summary.keys.first ?? "")")
        #expect(event.requestID.utf8.count <= ToolCallDecided.maxRefusedNameBytes && event.tool.utf8.count <= ToolCallDecided.maxRefusedNameBytes)
        #expect(EventCoding.encode(event).count < 4096)
        // It reads back, through both codings.
        let back = try EventCoding.decode(ToolCallDecided.self, from: EventCoding.encode(event))
        #expect(back == event)
    }

    @Test func argumentsUnderTheBoundAreKeptAsConfigured() {
        let arguments: JSONValue = ["text": "hi"]
        var full = decided(arguments: arguments)
        full.bound(arguments: arguments, canonicalBytes: arguments.canonicalJSON.utf8.count, maxBytes: 4096)
        #expect(full.arguments == arguments && full.argumentsStorage == "full" && full.argumentsSummary == nil)
        // `hash` storage keeps nothing: never over the bound.
        let big: JSONValue = ["text": .string(String(repeating: "x", count: 100_000))]
        var hashed = decided(arguments: big, storage: .hash)
        hashed.arguments = nil
        hashed.bound(arguments: big, canonicalBytes: big.canonicalJSON.utf8.count, maxBytes: 4096)
        #expect(hashed.argumentsStorage == "hash" && hashed.argumentsSummary == nil)
    }

    /// Events written before the bound have no `argumentsSummary`: they still decode.
    @Test func anOldDecisionWithoutASummaryStillDecodes() throws {
        let old = #"""
            {"agent":"a","argumentsHash":"00","argumentsStorage":"full","arguments":{"x":1},"callID":"9AFEB4D5-0C2E-4F7A-8D3B-5E6F7A8B9C0D",\#
            "decidedAt":"2026-12-02T06:06:01.105Z","decision":"deny","decisionMicros":3,"grant":"g","policyHash":"sha256:00",\#
            "requestID":"1","reservations":[],"rule":"tools.x","server":"s","session":"s1","tool":"x"}
            """#
        let event = try EventCoding.decode(ToolCallDecided.self, from: Array(old.utf8))
        #expect(event.argumentsSummary == nil && event.arguments == ["x": 1])
    }

    @Test func anAgentsRefusalsPastItsBudgetAreCountedAndSummarizedWhenItsMinuteEnds() throws {
        var ledger = RefusalLedger(budget: 3)
        let start = Date(timeIntervalSince1970: 1_000_000)
        var admissions: [RefusalLedger.Admission] = []
        for n in 0..<10 {
            admissions.append(
                ledger.refused(agent: "bot", server: "s", tool: n % 2 == 0 ? "a" : "b", decision: "deny", reason: "no", now: start + Double(n)))
        }
        #expect(Array(admissions.prefix(3)) == [.record, .record, .record])
        #expect(admissions[3] == .count(firstPastBudget: true) && admissions[4] == .count(firstPastBudget: false))
        // Another agent has its own budget.
        #expect(ledger.refused(agent: "other", server: "s", tool: "a", decision: "deny", reason: nil, now: start + 10) == .record)
        #expect(ledger.pending == 7)
        #expect(ledger.dueAt == start + 60)
        #expect(ledger.due(now: start + 59).isEmpty)
        let summaries = ledger.due(now: start + 60)
        #expect(summaries.count == 1)
        let summary = try #require(summaries.first)
        #expect(summary.agent == "bot" && summary.recorded == 3 && summary.summarized == 7 && summary.otherCount == 0)
        #expect(summary.entries.map(\.count) == [4, 3] && summary.entries.map(\.tool) == ["b", "a"])
        #expect(ledger.pending == 0 && ledger.dueAt == nil)
        // A new minute starts with a full budget.
        #expect(ledger.refused(agent: "bot", server: "s", tool: "a", decision: "deny", reason: "no", now: start + 61) == .record)
    }

    @Test func theBudgetsAreConfiguredWithDefaultsAndRanges() throws {
        let secret = WebhookSecret.generate().text
        let defaults = try loadConfig(
            """
            servers:
              pay: {command: pay-server, policy: pay.yaml}
            webhooks:
              - {name: a, url: "https://example.com", secrets: ["\(secret)"]}
              - {name: b, url: "https://example.com", secrets: ["\(secret)"], coalesce: off}
              - {name: c, url: "https://example.com", secrets: ["\(secret)"], coalesce: 0}
              - {name: d, url: "https://example.com", secrets: ["\(secret)"], coalesce: 2m}
            """)
        #expect(defaults.limits.maxRefusedArgumentBytes == 4096 && defaults.limits.maxRecordedRefusalsPerMinute == 60)
        #expect(defaults.limits.maxPendingApprovals == 20)
        #expect(defaults.webhooks.map(\.coalesce) == [30, 0, 0, 120])
        let set = try loadConfig(
            """
            limits: {max_refused_argument_bytes: 1024, max_recorded_refusals_per_minute: 0, max_pending_approvals: 3}
            servers:
              pay: {command: pay-server, policy: pay.yaml}
            """)
        #expect(set.limits.maxRefusedArgumentBytes == 1024 && set.limits.maxRecordedRefusalsPerMinute == 0)
        #expect(set.limits.maxPendingApprovals == 3)
        let found = configDiagnostics(
            """
            limits: {max_refused_argument_bytes: 100, max_pending_approvals: 0}
            servers:
              pay: {command: pay-server, policy: pay.yaml}
            webhooks:
              - {name: a, url: "https://example.com", secrets: ["\(secret)"], coalesce: 2h}
            """)
        for path in ["limits.max_refused_argument_bytes", "limits.max_pending_approvals", "webhooks[0].coalesce"] {
            #expect(found.contains { $0.path == path }, "\(path): \(found.map(\.path))")
        }
    }

    @Test func aSummaryHoldsAtMostItsEntriesAndCountsTheRestAsOther() throws {
        var ledger = RefusalLedger(budget: 0)
        let now = Date(timeIntervalSince1970: 1_000_000)
        for n in 0..<(RefusalsSummarized.maxEntries + 10) {
            _ = ledger.refused(agent: "bot", server: "s", tool: "t\(n)", decision: "hidden", reason: nil, now: now)
        }
        let summary = try #require(ledger.due(now: now, everything: true).first)
        #expect(summary.entries.count == RefusalsSummarized.maxEntries && summary.otherCount == 10)
        #expect(summary.summarized == RefusalsSummarized.maxEntries + 10)
        #expect(try EventCoding.decode(RefusalsSummarized.self, from: try EventCoding.encode(summary)) == summary)
    }
}
