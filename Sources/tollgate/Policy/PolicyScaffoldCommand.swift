import ArgumentParser
import Foundation
import TollgateCore
import TollgateServer

/// `tollgate policy scaffold <server>`: a starting policy from the server's tools.
struct PolicyScaffoldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaffold",
        abstract: "Write a starting policy for a server from the tools it offers.",
        discussion: """
            Lists the server's tools (as `tollgate tools` does) and writes a policy: read-only tools allowed, \
            destructive and financial ones held for approval, the rest allowed within 30 calls a minute per agent, \
            and anything else denied. Review it before use. The result is checked like `tollgate policy check`.

            Examples:
              tollgate policy scaffold git --config tollgate.yaml > policies/git.yaml
              tollgate policy scaffold git --output policies/git.yaml
            """
    )

    @Argument(help: ArgumentHelp("The server's name in the configuration.", valueName: "server"))
    var server: String

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Write to this file (refuses to overwrite one; makes its folder) instead of stdout.", valueName: "file"))
    var output: String?

    @OptionGroup var configuration: ConfigOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let config = try configuration.require()
        if let output, FileManager.default.fileExists(atPath: output) {
            throw ValidationError("--output: \(output) exists; refusing to overwrite it")
        }
        let inventory: ToolInventory
        do {
            inventory = try await ToolInventory.load(config: config, server: server, logger: logging.makeLogger("tollgate"))
        } catch {
            FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
            throw ExitCode(69)
        }
        let text = inventory.scaffold()
        do {
            _ = try PolicyLoader.load(text, fileName: "scaffold.yaml")
        } catch {
            FileHandle.standardError.write(Data("tollgate: the scaffold did not validate (a bug; please report it):\n\(error)\n".utf8))
            throw ExitCode(70)
        }
        if let output {
            // The folder is made when missing (`--output policies/git.yaml` in a fresh directory); the file is created
            // exclusively, so one that appeared meanwhile is not overwritten either.
            let url = URL(fileURLWithPath: output)
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(text.utf8).write(to: url, options: .withoutOverwriting)
            } catch {
                throw ValidationError("--output: cannot write \(output): \(error.localizedDescription)")
            }
        } else {
            print(text, terminator: "")
        }
    }
}
