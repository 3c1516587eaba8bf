extension GatewayConfigDecoder {
    /// What a server's keys say it is, once `command` and `url` are checked.
    private enum UpstreamKind {
        case stdio
        case http
    }

    static let upstreamHelp = "`command` (with args, env, cwd) to start a local process, or `url` (with transport, headers) to reach a remote server"

    mutating func decodeServers(_ node: SourceNode, storeArguments: ArgumentStorage) -> [ServerConfig] {
        guard case .mapping(let items) = node.value else {
            report(
                .wrongType, at: node.location, "servers", "expected a mapping of server names to servers, found \(node.kindDescription)",
                allowed: "name: {command: ..., policy: ...} or name: {url: ..., policy: ...} entries")
            return []
        }
        var servers: [ServerConfig] = []
        var seen: Set<String> = []
        for member in items {
            let path = FieldPath.key("servers", Self.shortened(member.key))
            guard seen.insert(member.key).inserted else {
                report(
                    .duplicateKey, at: member.keyLocation, path, "the server `\(Self.shortened(member.key))` is defined twice; only the first counts",
                    allowed: "a different name for each server")
                continue
            }
            let named = checkName(member.key, at: member.keyLocation, path, what: "server name")
            if let server = decodeServer(member.value, name: member.key, at: path, storeArguments: storeArguments), named {
                servers.append(server)
            }
        }
        return servers
    }

    private mutating func decodeServer(_ node: SourceNode, name: String, at path: String, storeArguments: ArgumentStorage) -> ServerConfig? {
        guard let fields = members(of: node, at: path, allowed: Self.serverKeys, required: ["policy"]) else { return nil }
        let commandMember = fields["command"]
        let urlMember = fields["url"]
        var kind: UpstreamKind?
        switch (commandMember, urlMember) {
        case (let command?, let url?):
            let later = Self.isBefore(command.keyLocation, url.keyLocation) ? url : command
            let other = later.key == "url" ? command : url
            report(
                .misplacedField,
                at: later.keyLocation,
                FieldPath.key(path, later.key),
                "the server has both `command` and `url` (`\(other.key)` is at \(other.keyLocation?.description ?? "?")); "
                    + "it is either a local process or a remote server",
                allowed: Self.upstreamHelp
            )
        case (nil, nil):
            if !Self.hasMisspeltUpstreamKey(node) {
                report(.missingField, at: node.location, path, "the server has neither `command` nor `url`", allowed: Self.upstreamHelp)
            }
        case (.some, nil): kind = .stdio
        case (nil, .some): kind = .http
        }
        if let kind {
            let (misplaced, written, needed) = kind == .stdio ? (Self.httpKeys, "command", "url") : (Self.stdioKeys, "url", "command")
            for key in misplaced {
                guard let member = fields[key] else { continue }
                report(
                    .misplacedField,
                    at: member.keyLocation,
                    FieldPath.key(path, key),
                    "`\(key)` only applies to a server \(kind == .stdio ? "reached by `url`" : "started with `command`")",
                    allowed: "remove `\(key)`, or use `\(needed)` instead of `\(written)`"
                )
            }
        }

        var storage = storeArguments
        if let value = Self.value(fields, "store_arguments"),
            let chosen = word(value, at: FieldPath.key(path, "store_arguments"), as: ArgumentStorage.self)
        {
            storage = chosen
        }
        var byToolValid = true
        let byTool = byToolMap(
            fields, "store_arguments_by_tool", at: path, as: ArgumentStorage.self, what: "a way to store arguments", allowed: "full, hash or keys",
            valid: &byToolValid)
        var commit = CommitMode.durable
        if let value = Self.value(fields, "commit"), let chosen = word(value, at: FieldPath.key(path, "commit"), as: CommitMode.self) {
            commit = chosen
        }
        let commitByTool = byToolMap(
            fields, "commit_by_tool", at: path, as: CommitMode.self, what: "a commit mode", allowed: "durable or async", valid: &byToolValid)
        let policy = fields["policy"].flatMap { self.path($0.value, at: FieldPath.key(path, "policy")) }

        let upstream: Upstream?
        switch kind {
        case .stdio: upstream = decodeStdio(fields, at: path).map(Upstream.stdio)
        case .http: upstream = decodeHTTP(fields, at: path).map(Upstream.http)
        case nil: upstream = nil
        }
        guard let upstream, let policy, byToolValid else { return nil }
        var server = ServerConfig(name: name, upstream: upstream, policyPath: policy, storeArguments: storage, storeArgumentsByTool: byTool)
        server.commit = commit
        server.commitByTool = commitByTool
        return server
    }

    /// Whether the server has a key that is a near miss for `command` or `url`, already reported as unknown with a
    /// suggestion, which makes "has neither" noise.
    private static func hasMisspeltUpstreamKey(_ node: SourceNode) -> Bool {
        guard case .mapping(let members) = node.value else { return false }
        return members.contains { !serverKeys.contains($0.key) && EditDistance.suggestion(for: $0.key, among: ["command", "url"]) != nil }
    }

    private static func isBefore(_ lhs: SourcePosition?, _ rhs: SourcePosition?) -> Bool {
        guard let lhs, let rhs else { return true }
        return (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }

    // MARK: Local processes

    private mutating func decodeStdio(_ fields: [String: SourceNode.Member], at path: String) -> StdioUpstream? {
        var valid = true
        var upstream = StdioUpstream(command: "")
        if let member = fields["command"] {
            let commandPath = FieldPath.key(path, "command")
            if let command = text(member.value, at: commandPath) {
                if command.isEmpty || command.allSatisfy(\.isWhitespace) {
                    valid = false
                    report(.invalidValue, at: member.value.location, commandPath, "the command is empty", allowed: "a program name or path")
                } else if command.unicodeScalars.contains("\0") {
                    valid = false
                    report(
                        .invalidValue, at: member.value.location, commandPath, "the command contains a NUL character",
                        allowed: "a program name or path")
                } else {
                    upstream.command = command
                }
            } else {
                valid = false
            }
        }
        if let node = Self.value(fields, "args") {
            let argsPath = FieldPath.key(path, "args")
            if let items = list(node, at: argsPath) {
                for (index, item) in items.enumerated() {
                    let itemPath = FieldPath.index(argsPath, index)
                    guard let argument = text(item, at: itemPath) else {
                        valid = false
                        continue
                    }
                    if argument.unicodeScalars.contains("\0") {
                        valid = false
                        report(.invalidValue, at: item.location, itemPath, "the argument contains a NUL character", allowed: "text without NUL")
                    }
                    upstream.arguments.append(argument)
                }
            } else {
                valid = false
            }
        }
        if let node = Self.value(fields, "env") {
            let envPath = FieldPath.key(path, "env")
            if let entries = stringMap(node, at: envPath, caseInsensitive: false) {
                for entry in entries {
                    if entry.name.isEmpty || entry.name.contains("=") || entry.name.unicodeScalars.contains("\0") {
                        valid = false
                        report(
                            .invalidName, at: entry.nameLocation, entry.path,
                            "\(AddressSyntax.quoted(entry.name)) is not an environment variable name",
                            allowed: "a name without `=` or NUL, usually capital letters, digits and _ (TZ, API_TOKEN)")
                    } else if entry.value.unicodeScalars.contains("\0") {
                        valid = false
                        report(
                            .invalidValue, at: entry.valueLocation, entry.path,
                            "the value contains a NUL character, which an environment cannot hold",
                            allowed: "text without NUL")
                    } else {
                        upstream.environment[entry.name] = entry.value
                    }
                }
            } else {
                valid = false
            }
        }
        if let node = Self.value(fields, "cwd") {
            if let directory = self.path(node, at: FieldPath.key(path, "cwd")) { upstream.directory = directory } else { valid = false }
        }
        if !decodeAccount(fields, at: path, into: &upstream) { valid = false }
        return valid ? upstream : nil
    }

    /// `user` and `group`: names that exist on this machine (``SystemAccounts``), `group` only beside `user`.
    private mutating func decodeAccount(_ fields: [String: SourceNode.Member], at path: String, into upstream: inout StdioUpstream) -> Bool {
        var valid = true
        if let node = Self.value(fields, "user") {
            let userPath = FieldPath.key(path, "user")
            let allowed = "a user name from the password database (`getent passwd` lists them), such as nobody or one made for this server"
            if let name = text(node, at: userPath, allowed: allowed) {
                if let problem = Self.accountNameProblem(name) {
                    valid = false
                    report(
                        .invalidValue, at: node.location, userPath, "\(AddressSyntax.quoted(name)) is not a user name: \(problem)", allowed: allowed)
                } else if !accounts.userExists(name) {
                    valid = false
                    report(.invalidValue, at: node.location, userPath, "there is no user `\(name)` on this machine", allowed: allowed)
                } else {
                    upstream.user = name
                }
            } else {
                valid = false
            }
        }
        if let node = Self.value(fields, "group") {
            let groupPath = FieldPath.key(path, "group")
            let allowed = "a group name from the group database (`getent group` lists them), such as nogroup"
            if Self.value(fields, "user") == nil {
                valid = false
                report(
                    .misplacedField, at: fields["group"]?.keyLocation, groupPath, "`group` only applies with `user`",
                    allowed: "add `user: NAME` (the child then runs as NAME with this group), or remove `group`")
            } else if let name = text(node, at: groupPath, allowed: allowed) {
                if let problem = Self.accountNameProblem(name) {
                    valid = false
                    report(
                        .invalidValue, at: node.location, groupPath, "\(AddressSyntax.quoted(name)) is not a group name: \(problem)", allowed: allowed
                    )
                } else if !accounts.groupExists(name) {
                    valid = false
                    report(.invalidValue, at: node.location, groupPath, "there is no group `\(name)` on this machine", allowed: allowed)
                } else {
                    upstream.group = name
                }
            } else {
                valid = false
            }
        }
        return valid
    }

    /// Why `name` cannot be a user or group name, or `nil`: the password and group databases have no empty names, and
    /// none with `:` (their field separator), a line break or NUL.
    static func accountNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name.count > 256 { return "it is longer than 256 characters" }
        if let bad = name.unicodeScalars.first(where: { $0 == ":" || $0.properties.generalCategory == .control }) {
            return "it contains " + (bad == ":" ? "`:`" : AddressSyntax.describe(bad))
        }
        return nil
    }

    // MARK: Remote servers

    private mutating func decodeHTTP(_ fields: [String: SourceNode.Member], at path: String) -> HTTPUpstream? {
        var valid = true
        var upstream = HTTPUpstream(url: "")
        if let member = fields["url"] {
            if let url = httpURL(member.value, at: FieldPath.key(path, "url"), example: "https://example.com/mcp") {
                upstream.url = url
            } else {
                valid = false
            }
        }
        if let node = Self.value(fields, "transport") {
            if let transport = word(node, at: FieldPath.key(path, "transport"), as: HTTPTransport.self) {
                upstream.transport = transport
            } else {
                valid = false
            }
        }
        if let node = Self.value(fields, "headers") {
            if let entries = stringMap(node, at: FieldPath.key(path, "headers"), caseInsensitive: true) {
                for entry in entries {
                    if let header = checkHeader(entry) { upstream.headers.append(header) } else { valid = false }
                }
            } else {
                valid = false
            }
        }
        return valid ? upstream : nil
    }

    private mutating func checkHeader(_ entry: MapEntry) -> HTTPHeader? {
        guard HTTPHeader.isToken(entry.name) else {
            report(
                .invalidName, at: entry.nameLocation, entry.path, "\(AddressSyntax.quoted(entry.name)) is not a header name",
                allowed: "letters, digits and !#$%&'*+-.^_`|~, such as Authorization or X-Api-Key")
            return nil
        }
        guard !HTTPHeader.reservedNames.contains(entry.name.lowercased()) else {
            report(
                .invalidName, at: entry.nameLocation, entry.path,
                "the gateway sets `\(entry.name)` itself (or it only concerns one connection), so it cannot be configured",
                allowed: "any header except " + HTTPHeader.reservedNames.sorted().joined(separator: ", "))
            return nil
        }
        if let bad = HTTPHeader.forbiddenCharacter(in: entry.value) {
            report(
                .invalidValue, at: entry.valueLocation, entry.path,
                "the value of `\(entry.name)` contains \(AddressSyntax.describe(bad))"
                    + (entry.substituted ? " (after substituting environment variables)" : ""),
                allowed: "visible characters, spaces and tabs; strip the line break from the variable's value")
            return nil
        }
        return HTTPHeader(name: entry.name, value: entry.value)
    }

    // MARK: Name-to-string mappings (env, headers)

    struct MapEntry {
        var name: String
        var nameLocation: SourcePosition?
        var value: String
        var valueLocation: SourcePosition?
        var substituted: Bool
        var path: String
    }

    /// The entries of a mapping of names to strings, in file order, values substituted; duplicate names (ignoring case
    /// when `caseInsensitive`) and values that are not strings are reported and left out.
    private mutating func stringMap(_ node: SourceNode, at path: String, caseInsensitive: Bool) -> [MapEntry]? {
        guard case .mapping(let members) = node.value else {
            report(
                .wrongType, at: node.location, path, "expected a mapping of names to strings, found \(node.kindDescription)",
                allowed: "NAME: value entries, such as {TZ: UTC}")
            return nil
        }
        var entries: [MapEntry] = []
        var seen: [String: String] = [:]
        var valid = true
        for member in members {
            let name = Self.shortened(member.key)
            let entryPath = FieldPath.key(path, name)
            let folded = caseInsensitive ? member.key.lowercased() : member.key
            if let first = seen[folded] {
                valid = false
                report(
                    .duplicateKey, at: member.keyLocation, entryPath,
                    caseInsensitive && first != member.key
                        ? "`\(name)` is the same header as `\(Self.shortened(first))` (header names ignore case)"
                        : "the key `\(name)` appears twice; only the first counts",
                    allowed: caseInsensitive ? "each header once" : "each name once")
                continue
            }
            seen[folded] = member.key
            guard case .string = member.value.value else {
                valid = false
                _ = text(member.value, at: entryPath)
                continue
            }
            guard let (resolved, substituted) = resolved(member.value, at: entryPath), case .string(let value) = resolved.value else {
                valid = false
                continue
            }
            entries.append(
                MapEntry(
                    name: member.key, nameLocation: member.keyLocation, value: value, valueLocation: member.value.location,
                    substituted: substituted, path: entryPath))
        }
        return valid ? entries : nil
    }

    /// A server's per-tool map (`store_arguments_by_tool`, `commit_by_tool`): each key a tool name or glob of 1 to 200
    /// characters, each value one of `Value`'s words; every bad entry reported (and `valid` cleared).
    private mutating func byToolMap<Value: RawRepresentable & CaseIterable>(
        _ fields: [String: SourceNode.Member], _ key: String, at path: String, as type: Value.Type, what: String, allowed: String,
        valid: inout Bool
    ) -> [String: Value] where Value.RawValue == String {
        guard let value = Self.value(fields, key) else { return [:] }
        guard let entries = stringMap(value, at: FieldPath.key(path, key), caseInsensitive: false) else {
            valid = false
            return [:]
        }
        var map: [String: Value] = [:]
        for entry in entries {
            guard (1...200).contains(entry.name.count) else {
                valid = false
                report(
                    .invalidValue, at: entry.nameLocation, entry.path, "a tool name or glob has 1 to 200 characters",
                    allowed: "a tool name, or a glob such as create_*")
                continue
            }
            guard let chosen = Value(rawValue: entry.value) else {
                valid = false
                report(
                    .invalidValue, at: entry.valueLocation, entry.path, "`\(Self.shortened(entry.value))` is not \(what)", allowed: allowed,
                    suggestion: EditDistance.suggestion(for: entry.value, among: Value.allCases.map(\.rawValue)))
                continue
            }
            map[entry.name] = chosen
        }
        return map
    }
}
