import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Children that die with the gateway, even when it is killed with SIGKILL and cannot stop them itself.
///
/// `posix_spawn` cannot set a parent-death signal (`prctl(PR_SET_PDEATHSIG)`), so a child that must die with the
/// gateway is started through util-linux's `setpriv --pdeathsig KILL` (the same `setpriv` that starts a server as
/// another user; with `user` both happen in one `setpriv`, the signal set after the ids change, since changing them
/// clears it), which then runs a one-line `/bin/sh` check before `exec`ing the program: if the gateway died before the
/// signal was set, the child's parent is no longer the gateway and it exits at once (status 137) instead of living on.
/// The program keeps the child's pid, so its process group and `waitpid` are unchanged.
///
/// ```swift
/// let (program, arguments) = ParentDeath.command("/usr/bin/python3", ["server.py"], setpriv: "/usr/bin/setpriv")!
/// // /usr/bin/setpriv ["--pdeathsig", "KILL", "--", "/bin/sh", "-c", ParentDeath.script, "tollgate-child", "<our pid>",
/// //                   "/usr/bin/python3", "server.py"]
/// ```
///
/// The signal reaches the child itself, not what it started: a program the child runs in turn outlives the gateway
/// unless it ends when its own parent or standard input does.
public enum ParentDeath {
    /// Run by `/bin/sh` with the gateway's pid and then the program and its arguments: exits unless its parent is still
    /// the gateway (`PPID` is read when the shell starts, after `setpriv` set the signal), else becomes the program,
    /// without the `PWD` the shell itself adds to the environment.
    public static let script = #"p=$1; shift; [ "$PPID" = "$p" ] || exit 137; unset PWD; exec "$@""#
    /// The shell that runs ``script``.
    public static let shell = "/bin/sh"

    /// The `setpriv` that would be used: the first of ``ChildUser/setprivCandidates`` that is executable.
    public static var setpriv: String? { ChildUser.setprivCandidates.first { FileManager.default.isExecutableFile(atPath: $0) } }

    /// The program and arguments that start `program` with `arguments` so that it gets SIGKILL when the process `parent`
    /// (this one) ends; `setprivOptions` go to the same `setpriv` first (a user's ids). Nil without a `setpriv`.
    public static func command(
        _ program: String, _ arguments: [String], setprivOptions: [String] = [], parent: pid_t = getpid(), setpriv: String? = Self.setpriv
    ) -> (program: String, arguments: [String])? {
        guard let setpriv else { return nil }
        return (setpriv, setprivOptions + ["--pdeathsig", "KILL", "--", shell, "-c", script, "tollgate-child", "\(parent)", program] + arguments)
    }
}
