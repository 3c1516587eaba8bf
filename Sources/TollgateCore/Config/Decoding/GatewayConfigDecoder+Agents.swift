extension GatewayConfigDecoder {
    mutating func decodeAgents(_ node: SourceNode) -> [AgentConfig] {
        guard let items = list(node, at: "agents") else { return [] }
        var agents: [AgentConfig] = []
        var ids: [String: String] = [:]
        var hashes: [String: String] = [:]
        for (index, item) in items.enumerated() {
            let path = FieldPath.index("agents", index)
            guard let fields = members(of: item, at: path, allowed: Self.agentKeys, required: ["id", "key_hash"]) else { continue }
            var valid = true
            var id: String?
            if let member = fields["id"] {
                id = uniqueName(member.value, at: FieldPath.key(path, "id"), entry: path, what: "agent id", seen: &ids)
                valid = valid && id != nil
            }
            var grant: String?
            if let node = Self.value(fields, "grant") {
                let grantPath = FieldPath.key(path, "grant")
                if let text = text(node, at: grantPath), checkName(text, at: node.location, grantPath, what: "grant name") {
                    grant = text
                } else {
                    valid = false
                }
            }
            var keyHash: String?
            if let member = fields["key_hash"] {
                let hashPath = FieldPath.key(path, "key_hash")
                keyHash = uniqueHash(member.value, at: hashPath, entry: path, secret: "key", holder: "agent", seen: &hashes)
                valid = valid && keyHash != nil
            }
            if valid, let id, let keyHash { agents.append(AgentConfig(id: id, grant: grant ?? id, keyHash: keyHash)) }
        }
        return agents
    }

    mutating func decodeReviewers(_ node: SourceNode, agents: [AgentConfig]) -> [ReviewerConfig] {
        guard let items = list(node, at: "reviewers") else { return [] }
        var reviewers: [ReviewerConfig] = []
        var ids: [String: String] = [:]
        var hashes: [String: String] = [:]
        var slackUsers: [String: String] = [:]
        let agentHashes = Set(agents.map(\.keyHash))
        for (index, item) in items.enumerated() {
            let path = FieldPath.index("reviewers", index)
            guard let fields = members(of: item, at: path, allowed: Self.reviewerKeys, required: ["id", "token_hash"]) else { continue }
            var valid = true
            var id: String?
            if let member = fields["id"] {
                id = uniqueName(member.value, at: FieldPath.key(path, "id"), entry: path, what: "reviewer id", seen: &ids)
                valid = valid && id != nil
            }
            var role = ReviewerRole.reviewer
            if let node = Self.value(fields, "role") {
                if let word = word(node, at: FieldPath.key(path, "role"), as: ReviewerRole.self) { role = word } else { valid = false }
            }
            var tokenHash: String?
            if let member = fields["token_hash"] {
                let hashPath = FieldPath.key(path, "token_hash")
                tokenHash = uniqueHash(member.value, at: hashPath, entry: path, secret: "token", holder: "reviewer", seen: &hashes)
                if let text = tokenHash, agentHashes.contains(text) {
                    tokenHash = nil
                    report(
                        .duplicateEntry, at: member.value.location, hashPath,
                        "\(path) has the same hash as an agent's key; an agent's key must never be a reviewer's token, "
                            + "or the agent could approve its own calls",
                        allowed: "a hash of a newly generated token for this reviewer")
                }
                valid = valid && tokenHash != nil
            }
            var slackUser: String?
            if let node = Self.value(fields, "slack_user_id") {
                slackUser = slackUserID(node, at: FieldPath.key(path, "slack_user_id"), entry: path, seen: &slackUsers)
                valid = valid && slackUser != nil
            }
            if valid, let id, let tokenHash { reviewers.append(ReviewerConfig(id: id, role: role, tokenHash: tokenHash, slackUserID: slackUser)) }
        }
        return reviewers
    }

    /// A well-formed key or token hash that no entry before it has (`seen`: hash → the entry that has it); `nil`
    /// after reporting why not.
    private mutating func uniqueHash(
        _ node: SourceNode, at path: String, entry: String, secret: String, holder: String, seen: inout [String: String]
    ) -> String? {
        guard let text = text(node, at: path), checkKeyHash(text, at: node.location, path) else { return nil }
        if let first = seen[text] {
            report(
                .duplicateEntry, at: node.location, path, "\(entry) has the same \(secret) hash as \(first); each \(holder) needs its own \(secret)",
                allowed: "a hash of a newly generated \(secret) for this \(holder)")
            return nil
        }
        seen[text] = entry
        return text
    }

    private mutating func checkKeyHash(_ hash: String, at location: SourcePosition?, _ path: String) -> Bool {
        guard !AgentKey.isWellFormedHash(hash) else { return true }
        let lower = hash.lowercased()
        let message: String
        var suggestion: String?
        if hash.hasPrefix(AgentKey.prefix) {
            message = "this is an agent key, not its hash; the configuration must hold only the hash (and the key should be replaced)"
            suggestion = AgentKey.hash(hash)
        } else if AgentKey.isWellFormedHash(lower) {
            message = "\(AddressSyntax.quoted(hash)) is not a key hash: the hex digits must be lowercase"
            suggestion = lower
        } else if AgentKey.isWellFormedHash(AgentKey.hashPrefix + lower) {
            message = "\(AddressSyntax.quoted(hash)) is not a key hash: it lacks the `sha256:` prefix"
            suggestion = AgentKey.hashPrefix + lower
        } else {
            message = "\(AddressSyntax.quoted(hash)) is not a key hash"
        }
        report(
            .invalidValue, at: location, path, message,
            allowed: "sha256: and 64 lowercase hex digits, the hash of the agent's key (AgentKey.hash)", suggestion: suggestion)
        return false
    }
}
