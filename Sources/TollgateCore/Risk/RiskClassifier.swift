/// Places an upstream tool in a ``RiskCategory`` with a ``RiskLevel``, and says why.
///
/// A pure, deterministic function of the ``ToolDescriptor``: the same tool always gets the same assessment, with the
/// same reasons in the same order, and nothing is read from anywhere else. Policies use the category for their
/// `categories:` rules; people read the reasons.
///
/// ```swift
/// let tool = ToolDescriptor(name: "binance_us_withdraw_crypto", description: "Submit a crypto withdrawal request.")
/// let risk = RiskClassifier().classify(tool)
/// risk.category  // .financial
/// risk.level     // .critical
/// risk.reasons   // ["name contains \"withdraw\"", "moves value out for good and may reach an open world (...)"]
/// ```
///
/// ## How a tool is read
///
/// **The annotations come first**, when the server sent them, but as hints from an untrusted server (see
/// ``ToolAnnotations``): a hint that raises the risk is believed (`destructiveHint=true`, `readOnlyHint=false`);
/// `readOnlyHint=true` makes a tool `read` unless its name, description or schema say it destroys, runs code or
/// moves money, in which case the contradiction is named in the reasons and the hint is not trusted;
/// `destructiveHint=false` does not clear a tool whose name says `delete`. `title` is never used. Without
/// annotations, and as the check on them:
///
/// 1. **The name.** Split into words (`camelCase`, `snake_case`, `kebab-case`, `dotted.names`). A name that starts
///    with a read verb (`get_withdraw_history`) reads whatever follows it, unless a destructive or execute word
///    follows too. Otherwise the gravest action word counts, and a money noun (`order`, `invoice`, `refund`) makes a
///    change financial. A name that ends in a record noun (`withdraw_history`, `deposit_address`) names a record,
///    not the action.
/// 2. **The description**, when the name has no action word: the verb it begins with (`Fetches a URL ...`). A
///    description that speaks of deleting or overwriting makes a change destructive.
/// 3. **The input schema**: `command`, `script`, `code` or `sql` makes a tool that runs things; `amount`,
///    `currency` or `price` makes a change financial.
///
/// When evidence disagrees, the graver category wins: financial, destructive, execute, write, read, in that order.
/// A tool with no evidence at all is `other` at `medium`: the MCP defaults assume a tool may be destructive, and
/// the classifier does not assume it is harmless.
///
/// Levels: read is low; write and other are medium; execute is high; destructive is high, or critical when it takes
/// a whole repository, database or table (`drop`, `truncate`, `force`, `delete_repository`); financial is high, or
/// critical for transfers, withdrawals and trades (placing an order, closing a position) that may reach an open world.
///
/// Some harm does not show in the verb and its object (docs/risk.md, "Harm that verbs on objects miss"): a read that
/// returns secrets or credentials (`read_secret`, `get-env`, a generic getter that takes a `kind`) is high, and so is
/// a write that changes privilege (`attach_user_policy`, `create_access_key`), discloses for good (`send_email`,
/// `push_image`) or lands code on a branch (`merge_pull_request`). Each is found by a general rule over words and
/// schema property names, never by a tool's name.
public struct RiskClassifier: Sendable {
    public init() {}

    /// Classifies one tool. Deterministic; `reasons` is never empty.
    public func classify(_ tool: ToolDescriptor) -> RiskAssessment {
        var reading = Reading()
        let name = NameEvidence(ToolWords.split(tool.name))
        reading.read(name)
        if reading.action == nil, let description = tool.description { reading.readLeadVerb(of: description) }
        if reading.action == nil, let noun = name.recordNoun {
            reading.action = .read
            reading.reasons.append("name ends with \"\(noun)\": it names a record")
        }
        if let description = tool.description { reading.readDestructiveWords(in: description) }
        if let schema = tool.inputSchema { reading.readProperties(of: schema) }
        reading.weigh(tool.annotations)

        let category = reading.action?.category ?? .other
        if reading.action == nil {
            reading.reasons.append("nothing in the name, description, schema or annotations says what it does")
        }
        if category == .read { reading.readSecrets(tool, name: name) }
        if category == .write { reading.readWiderHarm(tool, name: name) }
        let level = reading.level(for: category, name: name, annotations: tool.annotations)
        return RiskAssessment(category: category, level: level, reasons: reading.reasons)
    }
}

/// What the words of a tool's name say, worked out once.
private struct NameEvidence {
    /// Every action word, in order, with the base form that matched.
    var actions: [(word: String, action: RiskVocabulary.Action)] = []
    /// The money nouns in the name, in order.
    var moneyNouns: [String] = []
    /// The record noun the name ends with, if its only action words are financial ones used as nouns.
    var recordNoun: String?
    /// The financial words set aside because they only qualify ``recordNoun`` (`withdraw` in `withdraw_history`).
    var recordQualifiers: [String] = []
    /// The words that widen a destructive tool's damage: a container noun that the destructive verb acts on.
    var wideScope: [String] = []
    /// The words of the name, in order.
    let words: [String]

    init(_ words: [String]) {
        self.words = words
        let starts = words.contains { RiskVocabulary.match($0, in: RiskVocabulary.startVerbs) != nil }
        let runnable = words.contains { RiskVocabulary.match($0, in: RiskVocabulary.runnableNouns) != nil }
        let positions = words.contains { RiskVocabulary.match($0, in: RiskVocabulary.positionNouns) != nil }
        for (index, word) in words.enumerated() {
            if let (action, form) = RiskVocabulary.action(of: word) {
                actions.append((form, action))
            } else if starts, runnable, let form = RiskVocabulary.match(word, in: RiskVocabulary.startVerbs) {
                // `start_container`: starting something that runs code runs it.
                actions.append((form, .execute))
            } else if positions, let form = RiskVocabulary.match(word, in: RiskVocabulary.closingVerbs) {
                // `exit_positions`: leaving a position trades.
                actions.append((form, .financial))
            }
            if let noun = RiskVocabulary.match(word, in: RiskVocabulary.moneyNouns) { moneyNouns.append(noun) }
            if let noun = RiskVocabulary.match(word, in: RiskVocabulary.wideScopeNouns),
                NameEvidence.isActedOn(index, in: words)
            {
                wideScope.append(noun)
            }
        }
        if let last = words.last, let noun = RiskVocabulary.match(last, in: RiskVocabulary.recordNouns),
            !actions.isEmpty, actions.allSatisfy({ $0.action == .financial }), actions.last?.word != noun
        {
            // `withdraw_history`, `deposit_address`: the financial word says what the record is about.
            recordNoun = noun
            recordQualifiers = actions.map(\.word)
            actions.removeAll()
        } else if actions.isEmpty, let last = words.last,
            let noun = RiskVocabulary.match(last, in: RiskVocabulary.recordNouns)
        {
            recordNoun = noun
        }
    }

    func contains(_ word: String) -> Bool { actions.contains { $0.word == word } }

    /// Whether any word of the name is in `list` (in its base form).
    func has(_ list: Set<String>) -> Bool { words.contains { RiskVocabulary.match($0, in: list) != nil } }

    /// A key that is a credential (`access key`, `api key`), if the name has one; a bare `key` is not (Redis keys).
    var credentialKey: String? {
        zip(words, words.dropFirst()).first {
            RiskVocabulary.keyQualifiers.contains($0.0) && RiskVocabulary.match($0.1, in: ["key"]) != nil
        }.map { "\($0.0) \($0.1)" }
    }

    /// The first word of the name in `list`, in its base form.
    func first(in list: Set<String>) -> String? { words.lazy.compactMap { RiskVocabulary.match($0, in: list) }.first }

    /// Whether the container noun at `index` is what a destructive verb acts on: it follows the verb with no
    /// preposition between them (`delete_repository`, `delete_s3_bucket`; not `remove_team_from_project`), or comes
    /// right before it (`repository.delete`).
    static func isActedOn(_ index: Int, in words: [String]) -> Bool {
        func destructive(_ word: String) -> Bool { RiskVocabulary.action(of: word)?.0 == .destructive }
        if index + 1 < words.count, destructive(words[index + 1]) { return true }
        for earlier in stride(from: index - 1, through: 0, by: -1) {
            if RiskVocabulary.match(words[earlier], in: RiskVocabulary.scopePrepositions) != nil { return false }
            if destructive(words[earlier]) { return true }
        }
        return false
    }
}

/// The classification as it is built up, step by step, with the reasons for each step.
private struct Reading {
    typealias Action = RiskVocabulary.Action

    var action: Action?
    var reasons: [String] = []
    /// The word that made the tool financial, destructive or executing, for the contradiction message.
    var gravestWord: String?
    /// Whether a destructive or financial tool moves value out for good (decided from the name).
    var criticalMoney = false
    /// Set when a read returns secrets, or a write changes privilege, discloses for good or lands code: the level is
    /// high although the category alone would say low or medium.
    var graver = false

    mutating func read(_ name: NameEvidence) {
        if let noun = name.recordNoun, let qualifier = name.recordQualifiers.first {
            reasons.append("\"\(qualifier)\" qualifies \"\(noun)\": the name names a record, not the action")
        }
        guard let first = name.actions.first else { return }

        if first.action == .read, let or = name.words.firstIndex(of: "or"),
            let (change, form) = name.words[(or + 1)...].lazy.compactMap({ RiskVocabulary.action(of: $0) })
                .first(where: { $0.0 != .read })
        {
            // `get_or_create_label`: the tool may make the change; the reading verb does not hide it.
            action = change
            gravestWord = form
            reasons.append("name contains \"\(first.word)\" or \"\(form)\": it may change")
            if change == .financial { criticalMoney = RiskVocabulary.criticalFinancialVerbs.contains(form) }
            return
        }
        if first.action == .read {
            let graver = name.actions.dropFirst().filter { $0.action == .destructive || $0.action == .execute }
            if let worst = graver.max(by: { $0.action < $1.action }) {
                action = worst.action
                gravestWord = worst.word
                reasons.append("name contains \"\(worst.word)\"")
                return
            }
            action = .read
            reasons.append("name contains \"\(first.word)\"")
            let objects = name.actions.dropFirst().filter { $0.action != .read }.map(\.word) + name.moneyNouns
            if let object = objects.first {
                reasons.append("\"\(object)\" follows \"\(first.word)\": it is what the tool reads")
            }
            return
        }

        let worst = name.actions.max { $0.action < $1.action }!
        action = worst.action
        gravestWord = worst.word
        reasons.append("name contains \"\(worst.word)\"")

        let placing = name.actions.contains { RiskVocabulary.placingVerbs.contains($0.word) }
        let closing = name.actions.contains { RiskVocabulary.closingVerbs.contains($0.word) }
        if worst.action != .read, closing, name.has(RiskVocabulary.positionNouns) {
            // `close_position`, `close_all_positions`: closing a position is a trade.
            action = .financial
            gravestWord = worst.word
            reasons.append("name closes a position: it trades")
            criticalMoney = true
            return
        }
        if worst.action == .financial {
            criticalMoney =
                name.actions.contains { RiskVocabulary.criticalFinancialVerbs.contains($0.word) }
                || (placing && name.moneyNouns.contains { RiskVocabulary.criticalMoneyNouns.contains($0) })
        } else if let noun = name.moneyNouns.first, worst.action != .read {
            action = .financial
            gravestWord = noun
            reasons.append("name contains \"\(noun)\": it changes something that moves money")
            criticalMoney = placing && name.moneyNouns.contains { RiskVocabulary.criticalMoneyNouns.contains($0) }
        }
    }

    /// The verb the description begins with, once the usual openings (`This tool will`) are skipped.
    mutating func readLeadVerb(of description: String) {
        let words = ToolWords.split(description).filter { !$0.allSatisfy(\.isNumber) }
        guard let lead = words.first(where: { !RiskVocabulary.descriptionFillers.contains($0) }),
            let (verb, form) = RiskVocabulary.action(of: lead)
        else { return }
        action = verb
        if verb != .read { gravestWord = form }
        if verb == .financial { criticalMoney = RiskVocabulary.criticalFinancialVerbs.contains(form) }
        reasons.append("description begins with \"\(lead)\"")
    }

    /// Deleting or overwriting, anywhere in the description of a tool that changes things.
    mutating func readDestructiveWords(in description: String) {
        guard action == nil || action == .write || action == .execute else { return }
        let lowered = description.lowercased()
        var found = ToolWords.split(lowered).lazy.compactMap {
            RiskVocabulary.match($0, in: RiskVocabulary.destructiveDescriptionWords)
        }.first
        if found == nil { found = RiskVocabulary.destructiveDescriptionPhrases.first { lowered.contains($0) } }
        guard let word = found else { return }
        action = .destructive
        gravestWord = word
        reasons.append("description mentions \"\(word)\"")
    }

    /// The top-level properties of the input schema, in sorted order so the reasons are stable.
    mutating func readProperties(of schema: JSONValue) {
        guard let properties = schema["properties"]?.objectValue else { return }
        let names = properties.keys.sorted()

        if action == nil || action == .write,
            let property = names.first(where: { RiskVocabulary.executeProperties.contains($0.lowercased()) })
        {
            action = .execute
            gravestWord = property
            reasons.append("input schema has property \"\(property)\"")
        } else if action == .execute,
            let property = names.first(where: { RiskVocabulary.executeProperties.contains($0.lowercased()) })
        {
            reasons.append("input schema has property \"\(property)\"")
        }

        let money = names.first { property in
            let words = ToolWords.split(property)
            return words.contains { RiskVocabulary.moneyPropertyWords.contains($0) }
                || (words.contains("margin") && words.contains { RiskVocabulary.marginQualifiers.contains($0) })
        }
        if let property = money, action != .read {
            if action != .financial {
                action = .financial
                gravestWord = property
            }
            reasons.append("input schema has property \"\(property)\"")
        }

        if action == .write || action == .destructive,
            let property = names.first(where: { RiskVocabulary.pathProperties.contains($0.lowercased()) })
        {
            reasons.append("input schema has property \"\(property)\": it works on files")
        }
    }

    /// The server's hints, weighed against what the name, description and schema said.
    mutating func weigh(_ hints: ToolAnnotations?) {
        guard let hints else { return }

        if hints.readOnlyHint == true {
            switch action {
            case .destructive?, .execute?, .financial?:
                let evidence = gravestWord.map { "\"\($0)\"" } ?? "the rest of the tool"
                reasons.append("readOnlyHint=true contradicts \(evidence); the hint is not trusted")
            case .write?:
                let evidence = gravestWord.map { " (\"\($0)\")" } ?? ""
                reasons.append("readOnlyHint=true overrides a name that suggests a change\(evidence)")
                action = .read
            case .read?, nil:
                reasons.append("readOnlyHint=true")
                action = .read
            }
        } else {
            if hints.destructiveHint == true {
                reasons.append("destructiveHint=true")
                if action != .financial { action = .destructive }
            } else if hints.destructiveHint == false {
                if action == .destructive {
                    let evidence = gravestWord.map { "\"\($0)\"" } ?? "the rest of the tool"
                    reasons.append("destructiveHint=false contradicts \(evidence); the hint is not trusted")
                } else {
                    reasons.append("destructiveHint=false")
                    if action == nil || action == .read { action = .write }
                }
            }
            if hints.readOnlyHint == false {
                reasons.append("readOnlyHint=false")
                if action == nil || action == .read { action = .write }
            }
        }
        if hints.idempotentHint == true, hints.readOnlyHint != true, action != .read {
            reasons.append("idempotentHint=true (does not change the level)")
        }
        if hints.openWorldHint == false { reasons.append("openWorldHint=false") }
    }

    /// A reading tool that returns secrets or credentials: it names them, its description says so, or it is a generic
    /// getter that takes the kind of object to fetch (which may be `Secret`).
    mutating func readSecrets(_ tool: ToolDescriptor, name: NameEvidence) {
        if let word = name.first(in: RiskVocabulary.secretNameWords) ?? name.credentialKey {
            graver = true
            reasons.append("\"\(word)\" in the name: it returns secrets or credentials")
            return
        }
        if let description = tool.description?.lowercased(),
            let phrase = RiskVocabulary.secretDescriptionPhrases.first(where: { description.contains($0) })
        {
            graver = true
            reasons.append("description mentions \"\(phrase)\": it returns secrets or credentials")
            return
        }
        let properties = tool.inputSchema?["properties"]?.objectValue?.keys.sorted() ?? []
        if let verb = name.actions.first?.word, RiskVocabulary.genericGetterVerbs.contains(verb),
            let kind = properties.first(where: { RiskVocabulary.kindProperties.contains($0.lowercased()) })
        {
            graver = true
            reasons.append("input schema has property \"\(kind)\": a generic getter can return any kind, secrets included")
        }
    }

    /// A change whose harm its verb and object do not show: it changes privilege, discloses for good, or lands
    /// code on a branch. The category stays `write`; the level becomes high.
    mutating func readWiderHarm(_ tool: ToolDescriptor, name: NameEvidence) {
        let verbs = name.actions.map(\.word)  // in name order, so the reasons are stable
        let properties = tool.inputSchema?["properties"]?.objectValue?.keys.sorted() ?? []
        let lowered = properties.map { $0.lowercased() }

        // Changes privilege.
        if let credential = name.first(in: RiskVocabulary.credentialNouns) ?? name.credentialKey {
            return raise("\"\(credential)\" in the name: it mints or sets a credential")
        }
        if let noun = name.first(in: RiskVocabulary.grantNouns), let verb = verbs.first(where: RiskVocabulary.grantingVerbs.contains) {
            return raise("\"\(verb)\" a \"\(noun)\": it changes privilege")
        }
        if let noun = name.first(in: RiskVocabulary.membershipNouns), let verb = verbs.first(where: RiskVocabulary.joiningVerbs.contains) {
            return raise("\"\(verb)\" to a \"\(noun)\": it changes privilege")
        }
        if let index = lowered.firstIndex(where: RiskVocabulary.grantProperties.contains) {
            return raise("input schema has property \"\(properties[index])\": it grants privilege")
        }

        // Discloses for good.
        for (index, word) in name.words.enumerated() {
            guard let verb = RiskVocabulary.match(word, in: RiskVocabulary.sendingVerbs) else { continue }
            let others = name.words.enumerated().filter { $0.offset != index }.map(\.element)
            if let noun = others.lazy.compactMap({ RiskVocabulary.match($0, in: RiskVocabulary.outwardNouns) }).first {
                return raise("\"\(verb)\" an \"\(noun)\": what is sent cannot be called back")
            }
        }
        if let index = lowered.firstIndex(where: RiskVocabulary.publicProperties.contains) {
            return raise("input schema has property \"\(properties[index])\": it may publish")
        }
        if let schema = tool.inputSchema, let nested = Reading.nestedProperty(in: schema, from: RiskVocabulary.forwardingProperties) {
            return raise("input schema has property \"\(nested)\": it may send data on")
        }

        // Lands code on a branch.
        if let verb = verbs.first(where: RiskVocabulary.landingVerbs.contains), let noun = name.first(in: RiskVocabulary.codeNouns) {
            return raise("\"\(verb)\" with \"\(noun)\": it lands code on a branch")
        }
        if let branch = lowered.firstIndex(where: RiskVocabulary.branchProperties.contains),
            lowered.contains(where: RiskVocabulary.contentProperties.contains)
        {
            return raise("input schema has properties \"\(properties[branch])\" and content: it commits to a branch")
        }

        func raise(_ reason: String) {
            graver = true
            reasons.append(reason)
        }
    }

    /// The first property, at any depth up to four levels of `properties`, whose name is in `names`.
    static func nestedProperty(in schema: JSONValue, from names: Set<String>, depth: Int = 0) -> String? {
        guard depth < 4, let properties = schema["properties"]?.objectValue else { return nil }
        for key in properties.keys.sorted() where names.contains(key.lowercased()) { return key }
        for key in properties.keys.sorted() {
            if let found = nestedProperty(in: properties[key]!, from: names, depth: depth + 1) { return found }
        }
        return nil
    }

    mutating func level(for category: RiskCategory, name: NameEvidence, annotations: ToolAnnotations?) -> RiskLevel {
        switch category {
        case .read, .write:
            if graver { return .high }
            return category == .read ? .low : .medium
        case .other:
            return .medium
        case .execute:
            return .high
        case .destructive:
            if let verb = name.actions.first(where: { RiskVocabulary.criticalDestructiveVerbs.contains($0.word) }) {
                reasons.append("\"\(verb.word)\" destroys wholesale")
                return .critical
            }
            if let scope = name.wideScope.first {
                reasons.append("\"\(scope)\" in the name widens the damage")
                return .critical
            }
            return .high
        case .financial:
            guard criticalMoney else { return .high }
            if annotations?.isOpenWorld ?? true {
                reasons.append("moves value out for good and may reach an open world (openWorldHint is not false)")
                return .critical
            }
            reasons.append("moves value out, but in a closed world (openWorldHint=false)")
            return .high
        }
    }
}
