import Foundation

/// The environment the gateway gives the programs it starts: an allowlist of the gateway's own variables, never the
/// whole of it. The gateway's environment holds its secrets (the database URL and `PG*` password, webhook secrets,
/// agent and reviewer keys, the values behind other servers' `${VAR}` headers); a child gets none of them unless the
/// operator writes them into that child's own configuration (`servers.<name>.env`).
///
/// ```swift
/// let environment = ChildEnvironment.mcpServer(adding: ["API_TOKEN": token])
/// let child = try Spawn.start(command, arguments, environment: environment)
/// ```
///
/// What passes, and why:
/// - `PATH`, `HOME`: to find programs and a user's configuration; a server that runs `npx` or `uvx` needs both.
/// - `LANG`, `LANGUAGE` and the locale categories (`LC_ALL`, `LC_CTYPE`, ... by name, not any `LC_` prefix): the text
///   encoding of the child's standard streams (Python reads its stdio encoding from them) and its messages.
/// - `TZ`: the time zone, so a server's local times agree with the gateway's.
/// - `TMPDIR`: where the operator wants temporary files (a private directory under systemd, say); it is a path, not
///   a secret, and without it a child would write to `/tmp` instead.
/// - `USER`, `LOGNAME`, `SHELL`: who runs it and with which shell; each is in the password database anyway, and
///   tools such as `git` or `getpass.getuser()` read them.
///
/// Nothing else: not `TOLLGATE_*`, `PG*`, `DATABASE_URL`, proxies (`HTTPS_PROXY` may carry a password), cloud
/// credentials or anything a deployment happens to set. A server that needs one gets it from its `env`, where a
/// `${VAR}` reference passes the gateway's value on purpose.
public enum ChildEnvironment {
    /// The variables passed through by name.
    public static let passedThrough: Set<String> = [
        "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL",
        "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "LC_MONETARY", "LC_NUMERIC", "LC_TIME",
        "LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT", "LC_NAME", "LC_PAPER", "LC_TELEPHONE",
    ]

    /// Used when the gateway itself has no `PATH`: the usual system folders.
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The allowlisted part of `environment` (the gateway's own by default), with a `PATH` always set.
    public static func base(from environment: [String: String] = currentEnvironment()) -> [String: String] {
        var allowed = environment.filter { passedThrough.contains($0.key) }
        if allowed["PATH", default: ""].isEmpty { allowed["PATH"] = defaultPath }
        return allowed
    }

    /// An MCP server's environment: the allowlisted base; for a server that runs as another `user`, that user's `HOME`,
    /// `USER`, `LOGNAME` and `SHELL` instead of the gateway's; then `added` (the server's configured `env`), which wins.
    public static func mcpServer(
        adding added: [String: String], user: ChildUser? = nil, from environment: [String: String] = currentEnvironment()
    ) -> [String: String] {
        let allowed = base(from: environment)
        return (user?.environment(over: allowed) ?? allowed).merging(added) { $1 }
    }

    /// The environment of PostgreSQL's programs (`initdb`, `pg_ctl` and the server it starts): the base, and `PGPORT`,
    /// the one `PG*` variable they must share with the gateway: it names the cluster's socket (`.s.PGSQL.<port>`), which
    /// the gateway's own connection (libpq, reading the same variable) looks for.
    public static func postgres(from environment: [String: String] = currentEnvironment()) -> [String: String] {
        var allowed = base(from: environment)
        if let port = environment["PGPORT"] { allowed["PGPORT"] = port }
        return allowed
    }

    /// This process's environment.
    public static func currentEnvironment() -> [String: String] { ProcessInfo.processInfo.environment }
}
