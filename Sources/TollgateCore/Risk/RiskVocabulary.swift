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
        "summarize", "watch", "monitor", "poll", "return", "print", "scan", "simulate", "aggregate", "whoami",
    ]

    static let writeVerbs: Set<String> = [
        "create", "update", "write", "edit", "push", "commit", "add", "set", "put", "post", "send", "insert", "upsert",
        "append", "save", "upload", "rename", "move", "copy", "patch", "modify", "change", "merge", "fork", "assign",
        "apply", "submit", "publish", "reply", "comment", "react", "approve", "label", "tag", "mark", "enable",
        "disable", "navigate", "click", "type", "fill", "press", "select", "drag", "close", "stage", "invite",
        "schedule", "configure", "register", "follow", "unfollow", "archive", "restore", "lock", "unlock", "pin",
        "attach", "connect", "import", "sync", "finalize", "cancel", "new", "place", "make", "store", "accept",
        "replace", "grant", "draft", "detach", "download", "pull", "forward", "stop", "join", "elevate", "share",
    ]

    static let destructiveVerbs: Set<String> = [
        "delete", "remove", "drop", "destroy", "truncate", "purge", "wipe", "erase", "reset", "force", "overwrite",
        "revoke", "terminate", "kill", "uninstall", "discard", "prune", "rm", "clear",
    ]

    /// Verbs that run code or commands, and the names of the things that run them (`run_shell`, `bash`).
    static let executeWords: Set<String> = [
        "execute", "exec", "run", "eval", "evaluate", "invoke", "spawn", "launch", "install", "deploy", "trigger",
        "interpret", "shell", "bash", "sh", "cmd", "command", "terminal", "repl", "build",
    ]

    static let financialVerbs: Set<String> = [
        "pay", "charge", "refund", "transfer", "withdraw", "trade", "payout", "buy", "sell", "swap", "borrow", "repay",
        "lend", "stake", "unstake", "redeem", "invest", "liquidate", "purchase", "bid", "deposit", "exercise",
    ]

    /// Things whose creation or change moves money or value. They make a `create`, `update` or `cancel` financial.
    static let moneyNouns: Set<String> = [
        "payment", "invoice", "refund", "charge", "payout", "transfer", "withdrawal", "order", "trade", "subscription",
        "dispute", "coupon", "price", "funds", "fund", "money", "loan", "fiat", "leverage", "margin",
    ]

    /// Financial words that move value out and cannot be recalled: critical when the tool reaches an open world.
    static let criticalFinancialVerbs: Set<String> = [
        "transfer", "withdraw", "trade", "payout", "buy", "sell", "swap", "borrow", "liquidate", "exercise",
    ]

    /// Money nouns that are critical when the tool places them (`create_order`, `new_order`), not when it cancels them.
    static let criticalMoneyNouns: Set<String> = ["order", "trade", "transfer", "withdrawal", "payout"]

    /// Closing a position sells (or buys back) what it holds: a trade (`close_position`, `close_all_positions`).
    /// Only with a closing verb: `click_position` is a place on a screen.
    static let closingVerbs: Set<String> = ["close", "exit", "flatten"]
    static let positionNouns: Set<String> = ["position"]

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
        "namespace", "table", "collection", "workspace", "volume", "all", "everything", "schema", "mount",
    ]

    /// Words that, between a destructive verb and a container noun, say the container is only where the thing lives:
    /// `remove_team_from_project` removes a team, not the project.
    static let scopePrepositions: Set<String> = ["from", "in", "of", "on", "to", "for", "within", "inside", "at"]

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
    static let executeProperties: Set<String> = [
        "command", "cmd", "script", "code", "shell", "sql", "entrypoint", "dockerfile", "launchoptions", "launch_options",
        "allowdangerous", "allow_dangerous",
    ]

    /// Verbs that start something that then runs code, when their object is one of ``runnableNouns``
    /// (`start_container`, `restart_service`; not `start_search`).
    static let startVerbs: Set<String> = ["start", "restart"]
    static let runnableNouns: Set<String> = [
        "container", "process", "pod", "job", "task", "workflow", "pipeline", "instance", "vm", "machine", "server",
        "service", "function", "build", "run", "worker",
    ]

    // MARK: Harm that verbs on objects miss (docs/risk.md)

    /// Words in a name that say a reading tool returns secrets or credentials (`read_secret`, `get-env`).
    static let secretNameWords: Set<String> = [
        "secret", "credential", "password", "passwd", "kubeconfig", "env", "printenv", "dotenv", "apikey",
    ]

    /// Phrases in a reading tool's description that say it returns secrets or credentials.
    /// Only phrases that name a secret itself: not `secret` alone ("secrets engines", "secret names"), `access key`
    /// ("lists the user's access keys" gives their ids) nor `credentials` alone ("accessible with current credentials").
    static let secretDescriptionPhrases: [String] = [
        "the credentials", "credentials for", "credentials of", "returns credentials", "password", "kubeconfig", "environment variable",
        "private key", "secret value", "secret key",
        "api token", "access token", "leaked secret", "process's environment", "process environment",
    ]

    /// Verbs of a generic getter, and the input properties that let it fetch any kind of object, Secrets included
    /// (`resources_get` with `kind`, `kubectl_get` with `resourceType`).
    static let genericGetterVerbs: Set<String> = ["get", "list", "read", "fetch", "retrieve"]
    static let kindProperties: Set<String> = [
        "kind", "resourcetype", "resource_type", "objecttype", "object_type", "resourcekind", "resource_kind",
    ]

    /// Nouns for credentials: any change that creates or sets one mints access (`create_access_key`,
    /// `issue_pki_certificate`). `key` counts only after ``keyQualifiers`` (`access_key`, `api_key`).
    static let credentialNouns: Set<String> = [
        "credential", "certificate", "cert", "issuer", "password", "token", "secret", "apikey",
    ]
    static let keyQualifiers: Set<String> = ["access", "api", "ssh", "deploy", "signing", "service"]

    /// Nouns for grants: with ``grantingVerbs`` a change widens what a principal may do (`attach_user_policy`,
    /// `create_role`).
    static let grantNouns: Set<String> = ["policy", "permission", "role", "privilege", "acl", "scope"]
    static let grantingVerbs: Set<String> = [
        "attach", "put", "add", "grant", "assign", "invite", "create", "set", "new", "apply", "update", "elevate",
    ]

    /// Nouns for membership: with ``joiningVerbs`` a change puts a principal in a group (`add_user_to_group`,
    /// `grant_team_access`). Creating an empty group or team grants nothing.
    static let membershipNouns: Set<String> = [
        "group", "team", "member", "membership", "collaborator", "access", "admin", "owner", "sudoer",
    ]
    static let joiningVerbs: Set<String> = ["add", "grant", "invite", "assign", "join", "elevate"]

    /// Input properties that carry a grant (`roles` on `create_db_user`, `policy_document`, `access_level`). Not `role`
    /// alone: chat APIs use it for the author of a message.
    static let grantProperties: Set<String> = [
        "roles", "permission", "permissions", "policy", "policy_document", "policydocument", "access_level",
        "accesslevel", "assume_role_policy_document", "scopes",
    ]

    /// Sending verbs and the things that, once sent, leave for good (`send_email`, `post_tweet`, `push_image`,
    /// `publish_package`). A chat message is not among them: it stays in the workspace and can be deleted.
    static let sendingVerbs: Set<String> = ["send", "forward", "post", "publish", "push", "tweet", "share", "email"]
    static let outwardNouns: Set<String> = [
        "email", "mail", "tweet", "sms", "image", "package", "gist", "newsletter", "campaign", "public", "crate",
        "gem", "wheel",
    ]

    /// Input properties that make what a change writes public (`create_gist` with `public`), and nested ones that
    /// send it on (a mail filter whose action can `forward`).
    static let publicProperties: Set<String> = ["public", "is_public", "ispublic"]
    static let forwardingProperties: Set<String> = ["forward", "forwardto", "forward_to", "forwarding_address"]

    /// Verbs that land code on a branch, with the nouns that say code is what they land (`merge_pull_request`,
    /// `push_files`, `git_push`).
    static let landingVerbs: Set<String> = ["merge", "push"]
    static let codeNouns: Set<String> = [
        "file", "commit", "branch", "pull", "pr", "code", "change", "git", "repository", "repo", "mr", "patch",
    ]
    /// A change that takes a `branch` with file content commits to it (`create_or_update_file`, `push_files`).
    static let branchProperties: Set<String> = ["branch", "branch_name", "branchname", "target_branch"]
    static let contentProperties: Set<String> = ["content", "contents", "files", "file_content", "changes"]

    /// Words in an input property's name that carry an amount of money (`amount`, `unit_amount`, `currency`).
    static let moneyPropertyWords: Set<String> = ["amount", "currency", "price", "fee", "leverage"]

    /// `margin` is money only next to one of these (`max_margin_multiplier`, `margin_mode`); alone it is a page margin.
    static let marginQualifiers: Set<String> = ["multiplier", "ratio", "mode", "type", "level", "trading", "call"]

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
