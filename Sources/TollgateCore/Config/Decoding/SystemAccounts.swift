import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Which OS users and groups exist, for checking `servers.<name>.user` and `group` when the configuration is loaded.
/// ``system`` asks this machine's password and group databases (`getpwnam`, `getgrnam`: `/etc/passwd`, LDAP, ...
/// whatever NSS is set up to read); tests pass their own.
///
/// ```swift
/// let config = try GatewayConfigLoader.load(text, fileName: path, directory: folder, environment: env, accounts: .system)
/// ```
public struct SystemAccounts: Sendable {
    /// Whether a user of this name exists.
    public var userExists: @Sendable (String) -> Bool
    /// Whether a group of this name exists.
    public var groupExists: @Sendable (String) -> Bool

    public init(userExists: @escaping @Sendable (String) -> Bool, groupExists: @escaping @Sendable (String) -> Bool) {
        self.userExists = userExists
        self.groupExists = groupExists
    }

    /// This machine's users and groups.
    public static let system = SystemAccounts(
        userExists: { name in
            var entry = passwd()
            var found: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: 16 << 10)
            return getpwnam_r(name, &entry, &buffer, buffer.count, &found) == 0 && found != nil
        },
        groupExists: { name in
            var entry = group()
            var found: UnsafeMutablePointer<group>?
            var buffer = [CChar](repeating: 0, count: 64 << 10)
            return getgrnam_r(name, &entry, &buffer, buffer.count, &found) == 0 && found != nil
        })
}
