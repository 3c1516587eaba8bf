import ArgumentParser
import Foundation
import TollgateCore

/// `--config`, shared by the commands that read the gateway's configuration file.
struct ConfigOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("The gateway's configuration file, YAML or JSON (default: $TOLLGATE_CONFIG).", valueName: "file"))
    var config: String?

    /// The file named by `--config` or `TOLLGATE_CONFIG`, if any.
    var path: String? {
        if let config { return config }
        if let path = ProcessInfo.processInfo.environment["TOLLGATE_CONFIG"], !path.isEmpty { return path }
        return nil
    }

    /// Reads and checks the configuration; prints every error (file:line:column) and exits 78 when it is invalid.
    func load() throws -> GatewayConfig? {
        guard let path else { return nil }
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            FileHandle.standardError.write(Data("tollgate: cannot read the configuration file \(path): \(error.localizedDescription)\n".utf8))
            throw ExitCode(78)
        }
        do {
            return try GatewayConfigLoader.load(
                data, fileName: path, directory: url.deletingLastPathComponent().path, environment: ProcessInfo.processInfo.environment)
        } catch {
            let count = error.diagnostics.count
            var text = "tollgate: the configuration \(path) has \(count) error\(count == 1 ? "" : "s"):\n"
            for diagnostic in error.diagnostics { text += "\(diagnostic)\n" }
            FileHandle.standardError.write(Data(text.utf8))
            throw ExitCode(78)
        }
    }

    /// Like ``load()``, but a configuration is required.
    func require() throws -> GatewayConfig {
        guard let config = try load() else {
            throw ValidationError("no configuration: pass --config FILE or set TOLLGATE_CONFIG")
        }
        return config
    }
}
