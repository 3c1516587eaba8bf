import Foundation
import Testing

@testable import TollgateCore

/// The seed policy from the issue, exactly as written.
let seedPolicyJSON = #"""
    {"version": "1", "default": "deny",
     "tools": {"BinancePortfolioMarginRenewListenKey":
       {"limits": [{"counter": "binanceportfoliomarginrenewlistenkey_rate", "window": "minute", "max": 60, "scope": "grant"}]}}}
    """#

/// 2023-11-14T22:13:20Z plus `offset` seconds: 20 seconds into a minute, 13:20 into an hour.
func testTime(_ offset: Double = 0) -> Date { Date(timeIntervalSince1970: 1_700_000_000 + offset) }

func loadPolicy(_ text: String, file: String = "test.yaml") throws -> CompiledPolicy {
    try PolicyLoader.load(text, fileName: file)
}

/// The diagnostics a policy text produces; fails the test if it loads.
func diagnostics(_ text: String, file: String = "test.yaml", sourceLocation: SourceLocation = #_sourceLocation) -> [SourceDiagnostic] {
    do {
        _ = try PolicyLoader.load(text, fileName: file)
        Issue.record("expected the policy to be rejected", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.diagnostics
    }
}

/// A JSON value from JSON text (test shorthand).
func json(_ text: String) -> JSONValue {
    var reader = JSONSourceReader(text: text, limits: .default)
    do {
        return try reader.read().jsonValue
    } catch {
        Issue.record("bad JSON in test: \(error.message)")
        return .null
    }
}

func makeCall(
    _ tool: String,
    args: String = "{}",
    agent: String = "agent-1",
    grant: String = "grant-1",
    session: String = "session-1",
    category: RiskCategory? = nil,
    at time: Date = testTime()
) -> PolicyCall {
    PolicyCall(
        agent: agent,
        grant: grant,
        session: session,
        server: "server-1",
        tool: tool,
        arguments: json(args),
        category: category,
        now: time
    )
}

extension PolicyDecision.Outcome {
    var isAllow: Bool { if case .allow = self { true } else { false } }
    var isDeny: Bool { if case .deny = self { true } else { false } }
    var isHidden: Bool { if case .hidden = self { true } else { false } }
    var denyReason: String? { if case .deny(let reason) = self { reason } else { nil } }
    var retryAfter: Int? { if case .limited(let seconds, _) = self { seconds } else { nil } }
    var approval: ApprovalRequirement? { if case .requireApproval(let requirement) = self { requirement } else { nil } }
}
