import Foundation
import TollgateCore

/// The real MCP peers the tests talk to, installed by `ops/test` (ops/lib/python.sh) into `ops/.venv`: the official
/// Python SDK's client in two generations, the reference servers, `mcp-proxy`, and our scriptable fixtures.
public enum Peers {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// The repository's root (this file is `Tests/TollgateTestSupport/Peers.swift`).
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func find(_ variable: String, _ relative: String) throws -> String {
        let path = ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 } ?? root.appendingPathComponent(relative).path
        guard FileManager.default.isExecutableFile(atPath: path) || FileManager.default.fileExists(atPath: path) else {
            throw Missing(description: "\(path) is missing: run ./ops/test, which installs the Python MCP peers into ops/.venv")
        }
        return path
    }

    /// Python with `mcp` 2.3.0, `mcp-server-time` and `mcp-server-git`.
    public static func python2() throws -> String { try find("TOLLGATE_PY2", "ops/.venv/mcp2/bin/python") }
    /// Python with `mcp` 1.30.0 and `mcp-proxy`.
    public static func python1() throws -> String { try find("TOLLGATE_PY1", "ops/.venv/mcp1/bin/python") }
    public static func serverTime() throws -> String { try find("TOLLGATE_MCP_SERVER_TIME", "ops/.venv/mcp2/bin/mcp-server-time") }
    public static func serverGit() throws -> String { try find("TOLLGATE_MCP_SERVER_GIT", "ops/.venv/mcp2/bin/mcp-server-git") }
    public static func mcpProxy() throws -> String { try find("TOLLGATE_MCP_PROXY", "ops/.venv/mcp1/bin/mcp-proxy") }
    public static var fixtureServer: String { root.appendingPathComponent("Tests/Peers/fixture_server.py").path }
    public static var client: String { root.appendingPathComponent("Tests/Peers/mcp_client.py").path }
    /// A real OTLP/HTTP trace receiver (`--port`, `--out FILE`: one JSON line per span).
    public static var otlpReceiver: String { root.appendingPathComponent("Tests/Peers/otlp_receiver.py").path }

    /// How many of the fixture server's tool calls ended as `outcome` (`ok`, `error`, `cancelled`, `raised`), from the
    /// lines it wrote to its `--outcomes` file.
    public static func fixtureOutcomes(_ outcome: String, in file: URL) -> Int {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.contains(#""outcome": "\#(outcome)""#) || $0.contains(#""outcome":"\#(outcome)""#) }.count
    }

    /// One run of `mcp_client.py`: its exit code and its JSON lines.
    public struct ClientRun: Sendable, CustomStringConvertible {
        public var status: Int32
        public var lines: [JSONValue]
        public var stderr: String
        public var stdout: String

        public var connected: JSONValue? { lines.first { $0["connected"] != nil }?["connected"] }
        public var fatal: String? { lines.first { $0["fatal"] != nil }?["fatal"]?.stringValue }
        public var steps: [JSONValue] { lines.filter { $0["step"] != nil && $0["op"] != nil } }
        public func step(_ index: Int) -> JSONValue? { steps.first { $0["step"]?.doubleValue == Double(index) } }

        public var description: String { "exit \(status)\nstdout:\n\(stdout.prefix(4000))\nstderr:\n\(stderr.suffix(4000))" }
    }

    /// Runs the scriptable client (`python` picks the SDK generation) with `steps` against an HTTP URL.
    public static func runClient(
        python: String, url: String, transport: String = "streamable-http", key: String?, mode: String? = nil, steps: JSONValue,
        extraArguments: [String] = [], timeout: Duration = .seconds(90)
    ) throws -> ClientRun {
        var arguments = [client, "--url", url, "--transport", transport, "--steps", steps.canonicalJSON]
        if let key { arguments += ["--header", "Authorization: Bearer \(key)"] }
        if let mode { arguments += ["--mode", mode] }
        return try runClient(python: python, arguments: arguments + extraArguments, timeout: timeout)
    }

    public static func runClient(
        python: String, arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(90)
    ) throws
        -> ClientRun
    {
        let result = try RunningProgram.run(python, arguments, environment: environment, timeout: timeout)
        let lines = result.stdout.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        return ClientRun(status: result.status, lines: lines, stderr: result.stderr, stdout: result.stdout)
    }
}
