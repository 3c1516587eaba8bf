import ArgumentParser
import Foundation
import TollgateCore

/// `tollgate policy explain FILE --tool NAME`
struct PolicyExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show the decision a policy gives one tool call, and why.",
        discussion: """
            Prints the decision (allow, deny, limited, require_approval or hidden), the rule that made it, the \
            counters the call would add to, and every rule that was considered with the reason it did or did not \
            apply. Counters start at 0; pass --count NAME=VALUE to see what happens when one is already used.

              tollgate policy explain stripe.yaml --tool create_charge --args '{"amount": 70000, "currency": "usd"}'
            """
    )

    @Argument(help: "The policy file.")
    var file: String

    @Option(help: "The tool's name.")
    var tool: String

    @Option(help: "The call's arguments, as a JSON object.")
    var args: String = "{}"

    @Option(help: "The calling agent's id.")
    var agent: String = "agent"

    @Option(help: "The agent's grant.")
    var grant: String = "grant"

    @Option(help: "The MCP session id.")
    var session: String = "session"

    @Option(help: "The upstream server's name.")
    var server: String = "server"

    @Option(help: "The tool's risk category (read, write, execute, financial, destructive, other), for `categories` entries.")
    var category: String?

    @Option(name: .customLong("count"), help: "A counter's current value in every scope and window, as NAME=VALUE (repeatable).")
    var counts: [String] = []

    @Option(help: "Output format: text for people, json for scripts.")
    var format: PolicyOutputFormat = .text

    func run() async throws {
        let policy: CompiledPolicy
        do {
            policy = try PolicyLoader.load(try PolicyFile.read(file), fileName: file)
        } catch let error as SourceValidationError {
            PolicyFile.printError(error.description)
            throw ExitCode(1)
        }
        let arguments: JSONValue
        do {
            arguments = try JSONValue(parsing: args)
        } catch {
            throw ValidationError("--args is not valid JSON: \(error)")
        }
        var riskCategory: RiskCategory?
        if let category {
            guard let parsed = RiskCategory(rawValue: category) else {
                throw ValidationError("--category must be one of: \(RiskCategory.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            riskCategory = parsed
        }
        var values: [String: Double] = [:]
        for item in counts {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = Double(parts[1]) else { throw ValidationError("--count takes NAME=VALUE, got \(item)") }
            values[parts[0]] = value
        }
        let call = PolicyCall(
            agent: agent, grant: grant, session: session, server: server, tool: tool,
            arguments: arguments, category: riskCategory, now: Date())
        var supplied: [CounterKey: Double] = [:]
        for key in policy.counterKeys(for: call) {
            if let value = values[key.counter] { supplied[key] = value }
        }
        let explanation = policy.explain(call, counts: supplied)
        switch format {
        case .text: print(explanation.description)
        case .json: print(Self.json(explanation).canonicalJSON)
        }
    }

    static func json(_ explanation: PolicyExplanation) -> JSONValue {
        let decision = explanation.decision
        var outcome: [String: JSONValue] = ["decision": .string(decision.outcome.name)]
        switch decision.outcome {
        case .deny(let reason): outcome["reason"] = .string(reason)
        case .limited(let retryAfter, let reason):
            outcome["retry_after"] = .number(Double(retryAfter))
            outcome["reason"] = .string(reason)
        case .requireApproval(let requirement):
            outcome["approval"] = .object([
                "timeout": .number(Double(requirement.timeout)), "hold": .number(Double(requirement.hold)),
                "quorum": .number(Double(requirement.quorum)), "reviewers": .array(requirement.reviewers.map(JSONValue.string)),
                "reason": requirement.reason.map(JSONValue.string) ?? .null,
            ])
        case .allow, .hidden: break
        }
        outcome["rule"] = .string(decision.rule)
        outcome["policy_hash"] = .string(decision.policyHash)
        outcome["reservations"] = .array(
            decision.reservations.map { reservation in
                .object([
                    "counter": .string(reservation.key.counter), "scope": .string(reservation.key.scope),
                    "window_start": .number(Double(reservation.key.windowStart)), "window_seconds": .number(Double(reservation.key.windowSeconds)),
                    "amount": .number(reservation.amount), "ceiling": .number(reservation.ceiling), "rule": .string(reservation.rule),
                ])
            })
        outcome["considered"] = .array(
            explanation.steps.map { .object(["path": .string($0.path), "applied": .bool($0.applied), "detail": .string($0.detail)]) })
        return .object(outcome)
    }
}
