import ArgumentParser
import Foundation
import TollgateCore

/// `tollgate policy fmt FILE`
struct PolicyFormatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fmt",
        abstract: "Print a policy in its canonical form.",
        discussion: """
            The canonical form has a fixed key order, tools sorted by name, one limit or condition per line, and no \
            comments. Reading it back gives the same policy, and its content hash (the policy version recorded with \
            every decision) is the same as the original's: formatting never changes what a policy means.

            Use --format json to convert a YAML policy to JSON, and --check in CI to fail when a file is not in \
            canonical form.
            """
    )

    @Argument(help: "The policy file.")
    var file: String

    @Option(help: "The syntax to print: yaml or json.")
    var format: SourceFormat = .yaml

    @Flag(help: "Print nothing; exit 1 if the file is not already in canonical form.")
    var check = false

    func run() async throws {
        let data = try PolicyFile.read(file)
        let policy: CompiledPolicy
        do {
            policy = try PolicyLoader.load(data, fileName: file)
        } catch {
            PolicyFile.printError(error.description)
            throw ExitCode(1)
        }
        let text = format == .json ? policy.policy.canonicalJSON : policy.policy.canonicalYAML
        if check {
            if String(decoding: data, as: UTF8.self) != text {
                PolicyFile.printError("\(file) is not in canonical form; run `tollgate policy fmt \(file)`")
                throw ExitCode(1)
            }
            return
        }
        print(text, terminator: "")
    }
}

extension SourceFormat: ExpressibleByArgument {}
