/// The database role a client connects as, and what it may do: whether it could rewrite the log.
///
/// ```swift
/// let role = try await RoleStore(client: client).currentRole()
/// ```
public struct RoleStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// The connected role and what could make it privileged.
    public struct Privileges: Sendable, Equatable {
        public var isSuperuser: Bool
        /// `CREATEROLE`.
        public var mayCreateRoles: Bool
        /// `BYPASSRLS`.
        public var bypassesRowSecurity: Bool
        /// Owns the `tollgate` schema, or is a member of its owner.
        public var ownsSchema: Bool
        /// Owns one of the schema's tables (or functions' relations), or is a member of their owner.
        public var ownsTables: Bool
        /// The database has a `tollgate` schema (it was migrated).
        public var schemaExists: Bool
    }

    /// The name of the role the client connects as.
    public func currentRole() async throws -> String {
        try await client.query("SELECT current_user::text")[0].decode(String.self, 0)
    }

    /// What the connected role may do.
    public func privileges() async throws -> Privileges {
        let row = try await client.query(
            """
            SELECT r.rolsuper, r.rolcreaterole, r.rolbypassrls,
                   EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = 'tollgate' AND pg_has_role(current_user, n.nspowner, 'MEMBER')),
                   EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'tollgate' AND pg_has_role(current_user, c.relowner, 'MEMBER')),
                   EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = 'tollgate')
            FROM pg_roles r WHERE r.rolname = current_user
            """)[0]
        return Privileges(
            isSuperuser: try row.decode(Bool.self, 0), mayCreateRoles: try row.decode(Bool.self, 1),
            bypassesRowSecurity: try row.decode(Bool.self, 2),
            ownsSchema: try row.decode(Bool.self, 3), ownsTables: try row.decode(Bool.self, 4), schemaExists: try row.decode(Bool.self, 5))
    }
}
