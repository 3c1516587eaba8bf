import ArgumentParser
import Foundation
import TollgateCore

/// `tollgate policy import FILE [-o OUT]`
struct PolicyImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a PolicyLayer Intercept policy to a Tollgate policy.",
        discussion: """
            Reads an Intercept YAML policy (rules, conditions, state counters, rate_limit, hide, default) and \
            writes a Tollgate policy with the same meaning, in canonical YAML (or JSON when OUT ends in .json). \
            Where the meaning differs slightly, for example a rate limit's on_deny message, a note is printed on \
            standard error. docs/policy.md describes how each construct maps.
            """
    )

    @Argument(help: "The Intercept policy file.")
    var file: String

    @Option(name: .shortAndLong, help: "Where to write the converted policy (default: standard output).")
    var output: String?

    func run() async throws {
        let data = try PolicyFile.read(file)
        let result: InterceptImporter.Result
        do {
            result = try InterceptImporter.convert(String(decoding: data, as: UTF8.self), fileName: file)
        } catch {
            PolicyFile.printError(error.description)
            throw ExitCode(1)
        }
        for note in result.notes { PolicyFile.printError("note: \(note)") }
        let json = output?.lowercased().hasSuffix(".json") ?? false
        let text = json ? result.policy.canonicalJSON : result.policy.canonicalYAML
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: Data(text.utf8)) else {
                throw ValidationError("cannot write \(output)")
            }
        } else {
            print(text, terminator: "")
        }
    }
}
