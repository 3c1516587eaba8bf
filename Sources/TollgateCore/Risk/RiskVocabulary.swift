/// The words the classifier recognises in tool names, descriptions and input schemas, and what each suggests.
///
/// Kept apart from ``RiskClassifier`` so the lists can be read (and argued about) on their own. Every list holds
/// base forms; ``ToolWords/stems(of:)`` maps `deletes`, `deleted` and `deleting` back to `delete`.
enum RiskVocabulary {
    /// What an action word says a tool does, in increasing order of precedence.
    enum Action: Int, Comparable {
        case read, write, execute, destructive, financial

        static func < (lhs: Action, rhs: Action) -> Bool { lhs.rawValue < rhs.rawValue }

        var category: RiskCategory {
            switch self {
            case .read: return .read
            case .write: return .write
            case .execute: return .execute
            case .destructive: return .destructive
            case .financial: return .financial
            }
        }
    }

    static let readVerbs: Set<String> = [
        "get", "list", "read", "search", "fetch", "describe", "show", "find", "query", "retrieve", "view", "lookup",
        "inspect", "check", "count", "diff", "snapshot", "screenshot", "explain", "preview", "echo", "convert",
        "calculate", "compute", "validate", "hover", "scroll", "wait", "ping", "browse", "blame", "compare", "analyze",
        "summarize", "watch", "monitor", "poll", "return", "print",
    ]

    static let writeVerbs: Set<String> = [
        "create", "update", "write", "edit", "push", "commit", "add", "set", "put", "post", "send", "insert", "upsert",
        "append", "save", "upload", "rename", "move", "copy", "patch", "modify", "change", "merge", "fork", "assign",
        "apply", "submit", "publish", "reply", "comment", "react", "approve", "label", "tag", "mark", "enable",
        "disable", "navigate", "click", "type", "fill", "press", "select", "drag", "close", "stage", "invite",
        "schedule", "configure", "register", "follow", "unfollow", "archive", "restore", "lock", "unlock", "pin",
        "attach", "connect", "import", "sync", "finalize", "cancel", "new", "place", "make", "store",
    ]

    static let destructiveVerbs: Set<String> = [
        "delete", "remove", "drop", "destroy", "truncate", "purge", "wipe", "erase", "reset", "force", "overwrite",
        "revoke", "terminate", "kill", "uninstall", "discard", "prune", "rm", "clear",
    ]

    /// Verbs that run code or commands, and the names of the things that run them (`run_shell`, `bash`).
    static let executeWords: Set<String> = [
        "execute", "exec", "run", "eval", "evaluate", "invoke", "spawn", "launch", "install", "deploy", "trigger",
        "interpret", "shell", "bash", "sh", "cmd", "command", "terminal", "repl",
    ]

    static let financialVerbs: Set<String> = [
        "pay", "charge", "refund", "transfer", "withdraw", "trade", "payout", "buy", "sell", "swap", "borrow", "repay",
        "lend", "stake", "unstake", "redeem", "invest", "liquidate", "purchase", "bid", "deposit",
    ]

    /// Things whose creation or change moves money or value. They make a `create`, `update` or `cancel` financial.
    static let moneyNouns: Set<String> = [
        "payment", "invoice", "refund", "charge", "payout", "transfer", "withdrawal", "order", "trade", "subscription",
        "dispute", "coupon", "price", "funds", "fund", "money", "loan", "fiat",
    ]

    /// Financial words that move value out and cannot be recalled: critical when the tool reaches an open world.
    static let criticalFinancialVerbs: Set<String> = [
        "transfer", "withdraw", "trade", "payout", "buy", "sell", "swap", "borrow", "liquidate",
    ]

    /// Money nouns that are critical when the tool places them (`create_order`, `new_order`), not when it cancels them.
    static let criticalMoneyNouns: Set<String> = ["order", "trade", "transfer", "withdrawal", "payout"]

    /// Verbs that place a new thing: with a critical money noun they make a trade or a transfer.
    static let placingVerbs: Set<String> = ["create", "new", "place", "submit", "post", "add", "make", "execute", "send"]

    /// A name ending in one of these names a record about an action rather than the action: `withdraw_history`,
    /// `deposit_address`, `order_book`.
    static let recordNouns: Set<String> = [
        "history", "log", "info", "status", "details", "detail", "address", "config", "configuration", "snapshot",
        "book", "ticker", "record", "report", "stats", "summary", "list", "rate", "fee", "quote",
    ]

    /// Destructive verbs whose damage is wholesale.
    static let criticalDestructiveVerbs: Set<String> = ["drop", "truncate", "wipe", "purge", "destroy", "force"]

    /// Things whose deletion takes everything inside with them.
    static let wideScopeNouns: Set<String> = [
        "repository", "repo", "database", "db", "bucket", "project", "account", "organization", "org", "cluster",
        "namespace", "table", "collection", "workspace", "volume", "all", "everything", "schema",
    ]

    /// Words that, anywhere in the description of a tool that changes things, say the change destroys data. Only
    /// words with no common harmless sense: not `drop` ("drag and drop", "drop-down") nor `truncate` ("output is
    /// truncated"), which count in names only.
    static let destructiveDescriptionWords: Set<String> = [
        "delete", "overwrite", "destroy", "erase", "wipe", "purge", "permanently", "irreversible", "irreversibly",
    ]

    /// Phrases with the same meaning as ``destructiveDescriptionWords``.
    static let destructiveDescriptionPhrases: [String] = ["cannot be undone", "can not be undone", "can't be undone"]

    /// Words that open a description without saying what the tool does (`This tool will refund ...`).
    static let descriptionFillers: Set<String> = [
        "this", "tool", "will", "the", "a", "an", "to", "you", "can", "use", "it", "lets", "allows", "please", "mcp",
        "function", "used", "simply", "also",
    ]

    /// Input properties that carry code or a command to run.
    static let executeProperties: Set<String> = ["command", "cmd", "script", "code", "shell", "sql"]

    /// Words in an input property's name that carry an amount of money (`amount`, `unit_amount`, `currency`).
    static let moneyPropertyWords: Set<String> = ["amount", "currency", "price"]

    /// Input properties that name a place on a file system.
    static let pathProperties: Set<String> = ["path", "paths", "file", "filename", "directory", "source", "destination"]

    /// The action `word` suggests, and the base form that matched. Financial words win over the others, then
    /// destructive, execute, write and read, so a word in two lists takes the graver reading.
    static func action(of word: String) -> (Action, String)? {
        for form in ToolWords.stems(of: word) {
            if financialVerbs.contains(form) { return (.financial, form) }
            if destructiveVerbs.contains(form) { return (.destructive, form) }
            if executeWords.contains(form) { return (.execute, form) }
            if writeVerbs.contains(form) { return (.write, form) }
            if readVerbs.contains(form) { return (.read, form) }
        }
        return nil
    }

    /// The base form of `word` if it is in `list`.
    static func match(_ word: String, in list: Set<String>) -> String? {
        ToolWords.stems(of: word).first { list.contains($0) }
    }
}
