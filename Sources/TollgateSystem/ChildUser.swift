import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The OS user a child process runs as (`servers.<name>.user`, and `group`), read from the password and group
/// databases, and how to start a program as that user.
///
/// `posix_spawn` cannot change a child's user, so a child that must run as another user is started through util-linux's
/// `setpriv`, which sets the real, effective and saved user and group ids and the user's supplementary groups, then
/// `exec`s the program: the child keeps its pid (and so its process group), and with every uid non-zero it has no
/// capabilities left.
///
/// ```swift
/// let user = try ChildUser.resolve(user: "nobody")
/// let (program, arguments) = try user.command("python3", ["server.py"])
/// // /usr/bin/setpriv ["--reuid=65534", "--regid=65534", "--init-groups", "--", "python3", "server.py"] as root
/// ```
public struct ChildUser: Sendable, Equatable {
    public var name: String
    public var uid: uid_t
    /// The group the child runs with: `group`'s, else the user's primary group.
    public var gid: gid_t
    /// The user's home directory and login shell, from the password database.
    public var home: String
    public var shell: String

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unknownUser(String)
        case unknownGroup(String)
        /// Only root can start a process as another user or group.
        case notPermitted(user: String, group: String?, runningAs: String)
        case setprivMissing(searched: [String])

        public var description: String {
            switch self {
            case .unknownUser(let name):
                return "there is no user `\(name)` on this machine (`getent passwd \(name)` finds none)"
            case .unknownGroup(let name):
                return "there is no group `\(name)` on this machine (`getent group \(name)` finds none)"
            case .notPermitted(let user, let group, let runningAs):
                let target = "user `\(user)`" + (group.map { " and group `\($0)`" } ?? "")
                return "tollgate runs as \(runningAs), and only root can start a process as another user or group (\(target)): "
                    + "run tollgate as root (it then starts the server as \(user)), or remove `user`"
                    + (group == nil ? "" : " and `group`") + " to run the server as tollgate's own user"
            case .setprivMissing(let searched):
                return "starting a server as another user needs `setpriv` (util-linux), which is not in \(searched.joined(separator: " or ")): "
                    + "install it with `apt-get install util-linux` (Debian 12 and later; `setpriv` on Debian 10 and 11)"
            }
        }
    }

    public init(name: String, uid: uid_t, gid: gid_t, home: String, shell: String) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
        self.shell = shell
    }

    /// The user `user` (a name), with `group`'s id when given.
    public static func resolve(user: String, group: String? = nil) throws(Failure) -> ChildUser {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        guard getpwnam_r(user, &entry, &buffer, buffer.count, &found) == 0, found != nil else { throw .unknownUser(user) }
        var account = ChildUser(
            name: user, uid: entry.pw_uid, gid: entry.pw_gid, home: entry.pw_dir.map { String(cString: $0) } ?? "/",
            shell: entry.pw_shell.map { String(cString: $0) } ?? "/bin/sh")
        if let group {
            var groupEntry = Glibc.group()
            var groupFound: UnsafeMutablePointer<Glibc.group>?
            var groupBuffer = [CChar](repeating: 0, count: 64 << 10)
            guard getgrnam_r(group, &groupEntry, &groupBuffer, groupBuffer.count, &groupFound) == 0, groupFound != nil else {
                throw .unknownGroup(group)
            }
            account.gid = groupEntry.gr_gid
        }
        return account
    }

    /// Where `setpriv` is looked for.
    public static let setprivCandidates = ["/usr/bin/setpriv", "/bin/setpriv"]

    /// The program and arguments that start `program` with `arguments` as this user, for a process whose effective user
    /// and group ids are `uid` and `gid` (this one's by default): `program` itself when it already runs as this user and
    /// group, else `program` through `setpriv`, which only root may do (`group` is only for the message). With
    /// `diesWithParent`, through ``ParentDeath`` too (in the same `setpriv`), when there is a `setpriv`.
    public func command(
        _ program: String, _ arguments: [String], group: String? = nil, runningAs uid: uid_t = geteuid(), gid: gid_t = getegid(),
        setpriv: String? = Self.setprivCandidates.first { FileManager.default.isExecutableFile(atPath: $0) }, diesWithParent: Bool = false
    ) throws(Failure) -> (program: String, arguments: [String]) {
        if uid == self.uid && gid == self.gid {
            guard diesWithParent, let dying = ParentDeath.command(program, arguments, setpriv: setpriv) else { return (program, arguments) }
            return dying
        }
        guard uid == 0 else { throw .notPermitted(user: name, group: group, runningAs: Self.describeUser(uid)) }
        guard let setpriv else { throw .setprivMissing(searched: Self.setprivCandidates) }
        let ids = ["--reuid=\(self.uid)", "--regid=\(self.gid)", "--init-groups"]
        if diesWithParent, let dying = ParentDeath.command(program, arguments, setprivOptions: ids, setpriv: setpriv) { return dying }
        return (setpriv, ids + ["--", program] + arguments)
    }

    /// `environment` with this user's `HOME`, `USER`, `LOGNAME` and `SHELL`, as a login as this user would set them.
    public func environment(over environment: [String: String]) -> [String: String] {
        var environment = environment
        environment["HOME"] = home
        environment["USER"] = name
        environment["LOGNAME"] = name
        environment["SHELL"] = shell
        return environment
    }

    /// `name (uid N)`, or `uid N` for an id the password database does not know.
    static func describeUser(_ uid: uid_t) -> String {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &found) == 0, found != nil, let name = entry.pw_name else { return "uid \(uid)" }
        return "`\(String(cString: name))` (uid \(uid))"
    }
}
