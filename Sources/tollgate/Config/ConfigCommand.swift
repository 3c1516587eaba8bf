import ArgumentParser
import Foundation
import TollgateCore

/// `tollgate config`: the gateway's configuration file.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the gateway's configuration without starting it.",
        subcommands: [ConfigCheckCommand.self]
    )
}

/// `tollgate config check [--config FILE]`
struct ConfigCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration and every policy it names, and list every error.",
        discussion: """
            Reads the configuration as `tollgate serve` would (environment substitution included) and then every \
            server's policy file, and lists every error of every file at once: file, line and column, the bad field, \
            what is allowed there. Nothing is started and the database is not touched.

            The exit status is 0 when everything is valid and 78 (the status `serve` exits with on a bad \
            configuration) otherwise, so the command can guard a deploy:
              tollgate config check --config /etc/tollgate/tollgate.yaml && systemctl reload tollgate
            """
    )

    @OptionGroup var configuration: ConfigOptions

    @Option(help: "Output format: text for people, json for scripts.")
    var format: PolicyOutputFormat = .text

    func run() async throws {
        guard let path = configuration.path else {
            throw ValidationError("no configuration: pass --config FILE or set TOLLGATE_CONFIG")
        }
        let config: GatewayConfig
        do {
            config = try configuration.require()
        } catch let exit as ExitCode {
            // ConfigOptions printed every error of the configuration.
            if format == .json {
                print(JSONValue.object(["config": .string(path), "valid": .bool(false), "policies": .array([])]).canonicalJSON)
            }
            throw exit
        }
        var failed = false
        var policies: [JSONValue] = []
        for server in config.servers.sorted(by: { $0.name < $1.name }) {
            let file = server.policyPath
            var entry: [String: JSONValue] = ["server": .string(server.name), "file": .string(file)]
            do {
                let policy = try PolicyLoader.load(try PolicyFile.read(file), fileName: file)
                entry["valid"] = .bool(true)
                entry["hash"] = .string(policy.contentHash)
                entry["errors"] = .array([])
                if format == .text { print("servers.\(server.name).policy \(file): ok (\(policy.contentHash))") }
            } catch let error as SourceValidationError {
                failed = true
                entry["valid"] = .bool(false)
                entry["errors"] = .array(error.diagnostics.map(PolicyFile.json))
                if format == .text { print("servers.\(server.name).policy \(error.description)") }
            } catch {
                failed = true
                entry["valid"] = .bool(false)
                entry["errors"] = .array([.object(["message": .string("\(error)")])])
                if format == .text { print("servers.\(server.name).policy \(file): \(error)") }
            }
            policies.append(.object(entry))
        }
        switch format {
        case .json:
            print(JSONValue.object(["config": .string(path), "valid": .bool(!failed), "policies": .array(policies)]).canonicalJSON)
        case .text:
            let count = config.servers.count
            print(failed ? "\(path): the configuration is valid, but not every policy is" : "\(path): ok (\(count) server\(count == 1 ? "" : "s"))")
        }
        if failed { throw ExitCode(78) }
    }
}
