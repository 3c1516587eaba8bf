import ArgumentParser
import Foundation
import TollgateCore

/// `tollgate keys`: agent API keys.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make agent API keys and reviewer tokens.",
        subcommands: [NewKeyCommand.self]
    )
}

/// `tollgate keys new AGENT`: a fresh key, printed once, and the configuration entry that holds only its hash.
struct NewKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Make a fresh API key for an agent.",
        discussion: """
            Prints the key once (give it to the agent: it sends it as `Authorization: Bearer <key>`) and the entry \
            to add under `agents:` in the configuration, which holds only the key's SHA-256 hash. Tollgate never \
            stores the key itself, so a lost key cannot be shown again: make a new one and replace the hash.

            With `--reviewer ROLE` it makes a reviewer's token for the approvals API instead (roles: reviewer, \
            admin, auditor), and the entry to add under `reviewers:`.

            Examples:
              tollgate keys new ci-bot
              tollgate keys new ci-bot --grant ci --format json
              tollgate keys new alice --reviewer reviewer
            """
    )

    @Argument(help: ArgumentHelp("The agent's id: lowercase letters, digits, `-` and `_`, starting with a letter or digit.", valueName: "agent"))
    var agent: String

    @Option(
        name: .long,
        help: ArgumentHelp("The grant the agent holds (agents sharing a grant share its limits; default: the agent's id).", valueName: "grant"))
    var grant: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Make a reviewer's token with this role (reviewer, admin or auditor) instead of an agent key.", valueName: "role"))
    var reviewer: String?

    @Option(name: .long, help: "text (the key and a YAML entry) or json.")
    var format: PolicyOutputFormat = .text

    func validate() throws {
        if let reviewer, ReviewerRole(rawValue: reviewer) == nil {
            throw ValidationError("--reviewer `\(reviewer.prefix(80))` is not a role: use reviewer, admin or auditor")
        }
        if reviewer != nil, grant != nil { throw ValidationError("--grant is for agents; a reviewer has a role (--reviewer ROLE) instead") }
        for (label, value) in [("agent", agent), ("--grant", grant ?? agent)] where !Self.isName(value) {
            throw ValidationError(
                "\(label) `\(value.prefix(80))` is not a valid name: use 1 to 63 of a-z, 0-9, `-` and `_`, starting with a-z or 0-9")
        }
    }

    static func isName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, (1...63).contains(text.unicodeScalars.count) else { return false }
        func allowed(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) }
        return allowed(first) && text.unicodeScalars.allSatisfy { allowed($0) || $0 == "-" || $0 == "_" }
    }

    func run() throws {
        let key = AgentKey.generate()
        let hash = AgentKey.hash(key)
        let grant = grant ?? agent
        if let reviewer {
            printReviewer(token: key, hash: hash, role: reviewer)
            return
        }
        switch format {
        case .text:
            print(
                """
                key for \(agent) (shown once; give it to the agent as `Authorization: Bearer <key>`):
                  \(key)

                add to the configuration under `agents:`:
                  - id: \(agent)
                    grant: \(grant)
                    key_hash: \(hash)
                """)
        case .json:
            let object: [String: String] = ["agent": agent, "grant": grant, "key": key, "key_hash": hash]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(object), as: UTF8.self))
        }
    }

    private func printReviewer(token: String, hash: String, role: String) {
        switch format {
        case .text:
            print(
                """
                token for \(agent) (shown once; use it as TOLLGATE_TOKEN or `Authorization: Bearer <token>` on /v1):
                  \(token)

                add to the configuration under `reviewers:`:
                  - id: \(agent)
                    role: \(role)
                    token_hash: \(hash)
                """)
        case .json:
            let object = JSONValue.object(["reviewer": .string(agent), "role": .string(role), "token": .string(token), "token_hash": .string(hash)])
            print(object.canonicalJSON)
        }
    }
}
