import ArgumentParser

/// `tollgate-bench`: the benchmarks behind `ops/bench/*`. Built in release mode by those scripts.
struct TollgateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate-bench",
        abstract: "Measure Tollgate's parts and print each figure with its unit.",
        subcommands: [
            PolicySubcommand.self, EventStoreBench.self, EchoServerCommand.self, ApprovalBenchCommand.self, AuditBenchCommand.self, FsyncBench.self,
        ]
    )
}

struct PolicySubcommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "policy", abstract: "Policy decisions per second and per-decision latency.")
    func run() throws { try runPolicyBench() }
}
