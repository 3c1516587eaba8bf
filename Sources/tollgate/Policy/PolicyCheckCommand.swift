import ArgumentParser
import Foundation
import TollgateCore

/// `tollgate policy check FILE...`
struct PolicyCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate policy files and list every error.",
        discussion: """
            Each error names the file, the line and column, the path of the bad field \
            (tools.transfer.limits[0].window), what is wrong, what is allowed there and, for a misspelling, \
            the nearest correct word. Every error in every file is listed, not just the first.

            The exit status is 0 when every file is valid and 1 otherwise, so the command can guard a deploy:
              tollgate policy check policies/*.yaml && systemctl reload tollgate
            """
    )

    @Argument(help: "Policy files (.json, .yaml or .yml).")
    var files: [String]

    @Option(help: "Output format: text for people, json for scripts.")
    var format: PolicyOutputFormat = .text

    func run() async throws {
        var results: [JSONValue] = []
        var failed = false
        for file in files {
            do {
                let policy = try PolicyLoader.load(try PolicyFile.read(file), fileName: file)
                results.append(.object(["file": .string(file), "valid": .bool(true), "hash": .string(policy.contentHash), "errors": .array([])]))
                if format == .text { print("\(file): ok (\(policy.contentHash))") }
            } catch let error as SourceValidationError {
                failed = true
                results.append(.object(["file": .string(file), "valid": .bool(false), "errors": .array(error.diagnostics.map(PolicyFile.json))]))
                if format == .text { print(error.description) }
            }
        }
        if format == .json { print(JSONValue.array(results).canonicalJSON) }
        if failed { throw ExitCode(1) }
    }
}
