extension GatewayConfigDecoder {
    static let webhookKeys = ["name", "url", "secrets", "events", "servers", "tools", "format", "timeout", "retry_for", "backoff", "coalesce"]

    mutating func decodeWebhooks(_ node: SourceNode, servers: [ServerConfig]) -> [WebhookConfig] {
        guard let items = list(node, at: "webhooks") else { return [] }
        var webhooks: [WebhookConfig] = []
        var names: [String: String] = [:]
        let serverNames = Set(servers.map(\.name))
        for (index, item) in items.enumerated() {
            let path = FieldPath.index("webhooks", index)
            guard let fields = members(of: item, at: path, allowed: Self.webhookKeys, required: ["name", "url", "secrets"]) else { continue }
            var valid = true
            var webhook = WebhookConfig(name: "", url: "", secrets: [])
            if let member = fields["name"] {
                if let name = uniqueName(member.value, at: FieldPath.key(path, "name"), entry: path, what: "webhook name", seen: &names) {
                    webhook.name = name
                } else {
                    valid = false
                }
            }
            if let member = fields["url"] {
                if let url = httpURL(member.value, at: FieldPath.key(path, "url"), example: "https://hooks.example.com/tollgate") {
                    webhook.url = url
                } else {
                    valid = false
                }
            }
            if let member = fields["secrets"] {
                let secretsPath = FieldPath.key(path, "secrets")
                if let entries = list(member.value, at: secretsPath), !entries.isEmpty, entries.count <= 4 {
                    for (position, entry) in entries.enumerated() {
                        let entryPath = FieldPath.index(secretsPath, position)
                        guard let text = text(entry, at: entryPath) else {
                            valid = false
                            continue
                        }
                        do {
                            webhook.secrets.append(try WebhookSecret(parsing: text))
                        } catch {
                            valid = false
                            report(
                                .invalidValue, at: entry.location, entryPath, "\(error)",
                                allowed: "whsec_ and the base64 of 24 to 64 random bytes (tollgate webhooks secret makes one)")
                        }
                    }
                } else {
                    valid = false
                    report(
                        .invalidValue, at: member.value.location, secretsPath, "a webhook needs one to four secrets",
                        allowed: "a list of whsec_... secrets: the current one, and the previous one during a rotation")
                }
            }
            if let node = Self.value(fields, "events"), let entries = list(node, at: FieldPath.key(path, "events")) {
                var events: Set<WebhookConfig.Event> = []
                for (position, entry) in entries.enumerated() {
                    if let event = word(entry, at: FieldPath.index(FieldPath.key(path, "events"), position), as: WebhookConfig.Event.self) {
                        events.insert(event)
                    } else {
                        valid = false
                    }
                }
                webhook.events = events
            }
            if let node = Self.value(fields, "servers"), let entries = list(node, at: FieldPath.key(path, "servers")) {
                for (position, entry) in entries.enumerated() {
                    let entryPath = FieldPath.index(FieldPath.key(path, "servers"), position)
                    guard let name = text(entry, at: entryPath) else {
                        valid = false
                        continue
                    }
                    if !serverNames.contains(name) {
                        valid = false
                        report(
                            .invalidValue, at: entry.location, entryPath, "there is no server named `\(name)` in `servers`",
                            allowed: serverNames.sorted().joined(separator: ", "),
                            suggestion: EditDistance.suggestion(for: name, among: serverNames.sorted()))
                    }
                    webhook.servers.append(name)
                }
            }
            if let node = Self.value(fields, "tools"), let entries = list(node, at: FieldPath.key(path, "tools")) {
                for (position, entry) in entries.enumerated() {
                    if let tool = text(entry, at: FieldPath.index(FieldPath.key(path, "tools"), position)) {
                        webhook.tools.append(tool)
                    } else {
                        valid = false
                    }
                }
            }
            if let node = Self.value(fields, "format") {
                if let format = word(node, at: FieldPath.key(path, "format"), as: WebhookConfig.Format.self) {
                    webhook.format = format
                } else {
                    valid = false
                }
            }
            for (key, range, apply) in [
                ("timeout", 1...60, { (webhook: inout WebhookConfig, seconds: Int) in webhook.timeout = seconds }),
                ("retry_for", 1...(30 * 86400), { (webhook: inout WebhookConfig, seconds: Int) in webhook.retryFor = seconds }),
                ("backoff", 1...3600, { (webhook: inout WebhookConfig, seconds: Int) in webhook.backoff = seconds }),
                ("coalesce", 1...3600, { (webhook: inout WebhookConfig, seconds: Int) in webhook.coalesce = seconds }),
            ] {
                guard let node = Self.value(fields, key) else { continue }
                // `coalesce: off` (or 0): every request is sent on its own.
                if key == "coalesce" {
                    switch node.value {
                    case .string("off"), .number(0):
                        webhook.coalesce = 0
                        continue
                    default: break
                    }
                }
                let keyPath = FieldPath.key(path, key)
                guard let resolved = numeric(node, at: keyPath), let seconds = duration(resolved, at: keyPath) else {
                    valid = false
                    continue
                }
                if range.contains(seconds) {
                    apply(&webhook, seconds)
                } else {
                    valid = false
                    report(
                        .invalidValue, at: node.location, keyPath, "\(seconds) seconds is out of range",
                        allowed: "\(range.lowerBound) to \(range.upperBound) seconds")
                }
            }
            if valid { webhooks.append(webhook) }
        }
        return webhooks
    }
}
