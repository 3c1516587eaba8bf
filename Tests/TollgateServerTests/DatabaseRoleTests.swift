import Foundation
import TollgateCore
import TollgatePostgres
import TollgateTestSupport
import XCTest

/// Least privilege around the log: what the runtime role (the one gateways run as) cannot do to the log, the seals and
/// the approvals, what `audit verify` catches of what an owner could still do, and how `serve` treats a privileged role.
final class DatabaseRoleTests: XCTestCase {
    let tollgate = RunningProgram.tollgateBinary

    /// One statement's SQLSTATE (nil: it succeeded), inside a transaction that is rolled back.
    func attemptState(_ statement: String, on configuration: PostgresConfiguration) throws -> String? {
        let connection = try PostgresConnection.connect(configuration)
        defer { connection.close() }
        try connection.execute("BEGIN")
        defer { _ = try? connection.execute("ROLLBACK") }
        do {
            try connection.execute(statement)
            return nil
        } catch let error as PostgresError {
            return error.sqlState ?? "\(error)"
        }
    }

    func testTheRuntimeRoleCannotRewriteTheLogOrTheSeals() async throws {
        let runtime = try await TestCluster.freshDatabase()
        let owner = try TestCluster.owner(of: runtime)
        // Something to rewrite: events appended through the functions, as the runtime role, and a seal.
        let client = PostgresClient(configuration: runtime)
        let store = EventStore(client: client)
        try await store.append(
            stream: "call-1", expectedVersion: .noStream, events: [NewEvent(type: "ToolCallDecided", data: Array(#"{"a":1}"#.utf8))])
        try await client.query("INSERT INTO tollgate.event_seals SELECT transaction_id, position, repeat('a', 64) FROM tollgate.events")
        store.stop()
        await client.shutdown()

        // Each is refused for want of a privilege (42501, or "must be owner", also 42501), not by a trigger that an
        // owner could disable; the DDL ones succeed as the owner, so the check can tell the two roles apart.
        let ownerCan = [
            "ALTER TABLE tollgate.events DISABLE TRIGGER USER",
            "ALTER TABLE tollgate.events DISABLE TRIGGER events_no_update_or_delete",
            "ALTER TABLE tollgate.approvals DISABLE TRIGGER approvals_match_log",
            "DROP TRIGGER approvals_match_log ON tollgate.approvals",
            "CREATE TRIGGER t BEFORE INSERT ON tollgate.events FOR EACH ROW EXECUTE FUNCTION tollgate.refuse_event_change()",
            "UPDATE tollgate.event_seals SET chain = repeat('b', 64)",
            "DELETE FROM tollgate.event_seals",
            "TRUNCATE tollgate.event_seals",
            "TRUNCATE tollgate.approvals",
            "INSERT INTO tollgate.events (stream_id, version, type, data) VALUES ('call-forged', 1, 'ToolCallDecided', '{}')",
            """
            INSERT INTO tollgate.events (position, stream_id, version, type, data) OVERRIDING SYSTEM VALUE
            VALUES (999999, 'call-forged', 1, 'ToolCallDecided', '{}')
            """,
            "UPDATE tollgate.rate_windows SET count = 0",
            "DELETE FROM tollgate.approvals",
            "SELECT tollgate.grant_runtime('\(TestCluster.runtimeRole)')",
            "CREATE TABLE tollgate.mine (x int)",
        ]
        for statement in ownerCan {
            XCTAssertEqual(try attemptState(statement, on: runtime), "42501", "as the runtime role: \(statement)")
            XCTAssertNil(try attemptState(statement, on: owner), "as the owner: \(statement)")
        }
        // Refused to the runtime role for want of a privilege; refused to the owner too, by the append-only triggers.
        for statement in ["UPDATE tollgate.events SET data = '{}'", "DELETE FROM tollgate.events", "TRUNCATE tollgate.events"] {
            XCTAssertEqual(try attemptState(statement, on: runtime), "42501", "as the runtime role: \(statement)")
            XCTAssertEqual(try attemptState(statement, on: owner), "TG001", "as the owner: \(statement)")
        }
        // Only a superuser may turn triggers off for a session.
        XCTAssertEqual(try attemptState("SET session_replication_role = replica", on: runtime), "42501")

        // The catalog agrees: no table privilege beyond the grants, nothing owned, no superuser.
        let connection = try PostgresConnection.connect(runtime)
        defer { connection.close() }
        let role = try connection.query("SELECT rolsuper OR rolcreaterole OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        XCTAssertEqual(try role[0].decode(Bool.self, 0), false)
        let forbidden = try connection.query(
            """
            SELECT c.relname || ': ' || p.privilege FROM pg_class c
            CROSS JOIN unnest(ARRAY['TRUNCATE', 'TRIGGER', 'REFERENCES', 'DELETE']) AS p(privilege)
            WHERE c.relnamespace = 'tollgate'::regnamespace AND c.relkind IN ('r', 'p') AND has_table_privilege(c.oid, p.privilege)
              -- The reviewer page's sessions are deleted at sign-out and expiry (not events: nothing decides on them).
              AND NOT (c.relname = 'ui_sessions' AND p.privilege = 'DELETE')
            UNION ALL
            SELECT c.relname || ': ' || p.privilege FROM pg_class c
            CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE']) AS p(privilege)
            WHERE c.oid IN ('tollgate.events'::regclass, 'tollgate.rate_windows'::regclass, 'tollgate.schema_migrations'::regclass)
              AND has_table_privilege(c.oid, p.privilege)
            UNION ALL
            SELECT 'event_seals: UPDATE' WHERE has_table_privilege('tollgate.event_seals', 'UPDATE')
            UNION ALL
            SELECT 'owns ' || c.relname FROM pg_class c WHERE c.relnamespace = 'tollgate'::regnamespace AND pg_has_role(c.relowner, 'MEMBER')
            """)
        XCTAssertEqual(try forbidden.rows.map { try $0.decode(String.self, 0) }, [])
    }

    static let approvalPolicy = """
        version: "1"
        default: allow
        tools:
          transfer: {action: require_approval, approval: {hold: 1s, timeout: 1h, quorum: 2}}
        """

    /// A gateway with one call held for a quorum of two, granted once by alice: its approval's id.
    func heldCall() async throws -> (GatewayUnderTest, String) {
        let gateway = try await GatewayUnderTest.start(
            servers: [
                "pay": .stdio(
                    command: try Peers.python2(), arguments: [Peers.fixtureServer, "--transport", "stdio"], policy: Self.approvalPolicy)
            ],
            reviewers: ["alice": "reviewer", "bob": "reviewer"])
        let run = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("pay"), key: gateway.key,
            steps: [["op": "call_tool", "name": "transfer", "arguments": ["amount": 5, "to": "bob"], "timeout": 30]])
        XCTAssertEqual(run.steps.count, 1, run.description)
        let pending = await gateway.awaitApprovals(as: "alice")
        let id = try XCTUnwrap(pending.first?["id"]?.stringValue, gateway.log)
        XCTAssertEqual(gateway.api("POST", "/v1/approvals/\(id)/approve", as: "alice", body: "{}").status, 200)
        return (gateway, id)
    }

    func testTheRuntimeRoleCannotMarkAnApprovalApprovedWithoutItsQuorumInTheLog() async throws {
        let (gateway, id) = try await heldCall()
        defer { gateway.stop() }
        let runtime = gateway.database
        let approve = "UPDATE tollgate.approvals SET status = 'approved', state = jsonb_set(state, '{status}', '\"approved\"')"
        let forgeries = [
            approve + " WHERE approval_id = '\(id)'",
            // With a made-up second grant in the row's state as well.
            "UPDATE tollgate.approvals SET status = 'approved', version = version + 1, state = jsonb_set(jsonb_set(jsonb_set(state, '{status}', "
                + "'\"approved\"'), '{version}', to_jsonb(version + 1)), '{grants}', state->'grants' || "
                + "'[{\"reviewer\": \"mallory\", \"grantedAt\": \"2026-01-01T00:00:00.000Z\"}]') WHERE approval_id = '\(id)'",
            // Bound to other arguments.
            "UPDATE tollgate.approvals SET arguments_hash = 'sha256:other', state = jsonb_set(state, '{request,argumentsHash}', '\"sha256:other\"') "
                + "WHERE approval_id = '\(id)'",
            // A second row for a request the log never held.
            """
            INSERT INTO tollgate.approvals SELECT gen_random_uuid(), version, 'approved', consumed, agent, server, tool, arguments_hash,
                policy_hash, requested_at, expires_at, jsonb_set(state, '{status}', '"approved"') FROM tollgate.approvals
            """,
        ]
        for statement in forgeries {
            XCTAssertEqual(try attemptState(statement, on: runtime), "TG002", statement)
        }
        XCTAssertEqual(gateway.api("GET", "/v1/approvals/\(id)", as: "alice").body?["status"]?.stringValue, "pending")

        // With the events that justify it (bob's grant, through the API, as the runtime role), it is approved.
        XCTAssertEqual(gateway.api("POST", "/v1/approvals/\(id)/approve", as: "bob", body: "{}").status, 200)
        XCTAssertEqual(gateway.api("GET", "/v1/approvals/\(id)", as: "alice").body?["status"]?.stringValue, "approved")
        // And a row that says "unused" once the log says "used" is refused too: use it by retrying the call.
        let retry = try Peers.runClient(
            python: try Peers.python2(), url: gateway.url("pay"), key: gateway.key,
            steps: [["op": "call_tool", "name": "transfer", "arguments": ["amount": 5, "to": "bob"], "timeout": 30]])
        XCTAssertEqual(retry.step(0)?["result"]?["isError"]?.boolValue, false, retry.description)
        let unuse = "UPDATE tollgate.approvals SET consumed = false, state = state - 'consumption' WHERE approval_id = '\(id)'"
        XCTAssertEqual(try attemptState(unuse, on: runtime), "TG002")
        XCTAssertEqual(try AuditRun.verify(tollgate, runtime).status, 0)
    }

    func testVerifyReportsAnApprovalTheLogDoesNotJustify() async throws {
        let (gateway, id) = try await heldCall()
        gateway.stop()
        let clean = try AuditRun.verify(tollgate, gateway.database)
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)
        // What only an owner (or a superuser) can do: past the trigger, one grant of two made to look like a quorum.
        let owner = PostgresClient(configuration: try TestCluster.owner(of: gateway.database))
        try await owner.withConnection { connection in
            try connection.execute(
                """
                ALTER TABLE tollgate.approvals DISABLE TRIGGER approvals_match_log;
                UPDATE tollgate.approvals SET status = 'approved', state = jsonb_set(state, '{status}', '"approved"') WHERE approval_id = '\(id)';
                ALTER TABLE tollgate.approvals ENABLE TRIGGER approvals_match_log
                """)
        }
        await owner.shutdown()
        let verify = try AuditRun.verify(tollgate, gateway.database)
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("BROKEN: approval \(id) is approved"), verify.stdout)
        XCTAssertTrue(verify.stdout.contains("1 of the 2 ApprovalGranted"), verify.stdout)
    }

    func testServeRefusesARoleThatCouldRewriteTheLogAndRunsAsAGrantedRuntimeRole() async throws {
        let owner = try await TestCluster.freshDatabase(migrated: false)
        let port = HTTPProbe.freePort()
        let refused = try RunningProgram.run(
            tollgate, ["serve", "--listen", "127.0.0.1:\(port)", "--database", owner.connectionString], timeout: .seconds(60))
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("superuser") && refused.stderr.contains("--migration-database"), refused.stderr)
        XCTAssertNil(HTTPProbe.get(port: port, path: "/healthz"))

        // An operator's own runtime role: created, then granted by `tollgate migrate --grant-runtime`.
        let role = "tg_rt_\(getpid())"
        let password = UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let admin = try PostgresConnection.connect(owner)
        try admin.execute("DROP ROLE IF EXISTS \(role); CREATE ROLE \(role) LOGIN PASSWORD '\(password)'")
        admin.close()
        let migrate = try RunningProgram.run(tollgate, ["migrate", "--database", owner.connectionString, "--grant-runtime", role])
        XCTAssertEqual(migrate.status, 0, migrate.stderr)
        XCTAssertTrue(migrate.stdout.contains("Granted the runtime privileges to \(role)"), migrate.stdout)
        let runtime = owner.connectionString + " user=\(role) password=\(password)"
        let serve = try RunningProgram(tollgate, ["serve", "--listen", "127.0.0.1:\(port)", "--database", runtime])
        defer { serve.kill() }
        let ready = await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(30))
        XCTAssertEqual(ready?.status, 200, serve.standardError)
        serve.signal(SIGTERM)
        XCTAssertEqual(try serve.wait(timeout: .seconds(15)), 0, serve.standardError)

        // Told to allow it, serve runs as the owner, and says what that risks.
        let allowed = try RunningProgram(
            tollgate, ["serve", "--listen", "127.0.0.1:\(port)", "--database", owner.connectionString, "--allow-privileged-role"])
        defer { allowed.kill() }
        let allowedReady = await HTTPProbe.waitFor(port: port, path: "/readyz", timeout: .seconds(30))
        XCTAssertEqual(allowedReady?.status, 200, allowed.standardError)
        XCTAssertTrue(allowed.standardError.contains("could rewrite the log"), allowed.standardError)
    }
}

enum AuditRun {
    static func verify(_ tollgate: String, _ database: PostgresConfiguration) throws -> (status: Int32, stdout: String, stderr: String) {
        try RunningProgram.run(
            tollgate, ["audit", "verify", "--database", database.connectionString, "--log-level", "warning"], timeout: .seconds(60))
    }
}
