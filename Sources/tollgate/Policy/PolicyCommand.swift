import ArgumentParser
import Foundation
import TollgateCore

/// `tollgate policy`: the commands that read policy files without a running gateway.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check, explain, format and import tool-call policies.",
        discussion: """
            A policy says, for one upstream MCP server, which tool calls agents may make: allowed, denied, \
            rate-limited, held for human approval, or hidden. Policies are JSON or YAML; the language is \
            described in docs/policy.md.

            These commands read files only: they need no database and no running gateway.
            """,
        subcommands: [
            PolicyCheckCommand.self, PolicyExplainCommand.self, PolicyFormatCommand.self, PolicyImportCommand.self, PolicyScaffoldCommand.self,
        ]
    )
}

/// How a policy command prints its result.
enum PolicyOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

enum PolicyFile {
    /// Reads a file, refusing one larger than the policy size limit before loading it into memory.
    static func read(_ path: String) throws -> Data {
        let limit = SourceLimits.default.maxBytes
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes?[.size] as? Int, size > limit {
            throw SourceValidationError(diagnostics: [
                SourceDiagnostic(
                    code: .fileTooLarge, file: path, location: nil, path: "",
                    message: "the file is \(size) bytes; policies are limited to \(limit) bytes", allowed: "at most \(limit) bytes")
            ])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(path)")
        }
        return data
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func json(_ diagnostic: SourceDiagnostic) -> JSONValue {
        var members: [String: JSONValue] = [
            "code": .string(diagnostic.code.rawValue),
            "file": .string(diagnostic.file),
            "path": .string(diagnostic.path),
            "message": .string(diagnostic.message),
        ]
        if let location = diagnostic.location {
            members["line"] = .number(Double(location.line))
            members["column"] = .number(Double(location.column))
        }
        if let allowed = diagnostic.allowed { members["allowed"] = .string(allowed) }
        if let suggestion = diagnostic.suggestion { members["suggestion"] = .string(suggestion) }
        return .object(members)
    }
}
