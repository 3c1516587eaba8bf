import Logging
import TollgateCore
import TollgateSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The start-up check of the OS users that stdio servers run as, shared by `serve` and `tollgate stdio`.
///
/// A server with `user` must be startable as that user: the user (and `group`) still exist, and the gateway runs as
/// root (with `setpriv` installed) or already as that user. Anything else stops the gateway at start with the reason,
/// rather than failing each session later.
///
/// A gateway that runs as root starts a server without `user` as root too: its tools can then read every file of the
/// gateway, including the embedded cluster's password files and the configuration. That stays the default (an
/// operator's servers may need root's files), and each such server gets one warning at start that names the fix.
enum StdioServerUsers {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Checks `servers` (stdio ones; others are skipped) and logs the warnings; throws the first server that cannot start.
    static func check(_ servers: [ServerConfig], runningAs uid: uid_t = geteuid(), logger: Logger) throws {
        for server in servers {
            guard case .stdio(let stdio) = server.upstream else { continue }
            if let name = stdio.user {
                do {
                    _ = try ChildUser.resolve(user: name, group: stdio.group).command(
                        stdio.command, stdio.arguments, group: stdio.group, runningAs: uid)
                } catch {
                    throw Failure(description: "servers.\(server.name).user: cannot start the server as `\(name)`: \(error)")
                }
            } else if uid == 0 {
                let warning =
                    "servers.\(server.name) runs as root, like the gateway: its tools can read the gateway's files, including the database "
                    + "passwords; set servers.\(server.name).user to an unprivileged user (or to root, to keep this on purpose)"
                logger.warning("\(warning)", metadata: ["server": "\(server.name)"])
            }
        }
    }
}
