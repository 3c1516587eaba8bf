-- The reviewer page's sessions (`tollgate serve`'s /ui, docs/reviewers.md). A reviewer who signs in with their token gets
-- a cookie of 32 random bytes; only the SHA-256 of the cookie's value is kept here (hex), so whoever reads this table
-- cannot act as a reviewer. Each row holds the reviewer's id and the hash of the token they signed in with (a reviewer
-- removed from the configuration, or given a new token, is signed out at their next request), the session's CSRF token,
-- and when it was made and last used: a session ends `ui.session_idle_timeout` after its last use or
-- `ui.session_lifetime` after it was made, whichever comes first. Several gateways on one database share the sessions.
--
-- Sessions are not events: nothing decides on them, and a lost session only means signing in again. The runtime role
-- may delete them (sign-out, expiry), and nothing else in the schema.
CREATE TABLE tollgate.ui_sessions (
    cookie_hash  text        PRIMARY KEY CHECK (cookie_hash ~ '^[0-9a-f]{64}$'),
    reviewer     text        NOT NULL CHECK (length(reviewer) BETWEEN 1 AND 200),
    token_hash   text        NOT NULL CHECK (length(token_hash) <= 100),
    csrf_token   text        NOT NULL CHECK (length(csrf_token) BETWEEN 32 AND 100),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX ui_sessions_by_last_seen ON tollgate.ui_sessions (last_seen_at);
CREATE INDEX ui_sessions_by_reviewer ON tollgate.ui_sessions (reviewer);

-- grant_runtime as 0013 made it, with the sessions among the tables granted.
CREATE OR REPLACE FUNCTION tollgate.grant_runtime(p_role name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role pg_roles%ROWTYPE;
BEGIN
    -- Two gateways starting at once would otherwise update the same catalog rows concurrently.
    PERFORM pg_advisory_xact_lock(hashtextextended('tollgate.grant_runtime', 0));
    SELECT * INTO v_role FROM pg_roles WHERE rolname = p_role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role % does not exist', p_role USING ERRCODE = 'undefined_object',
            HINT = format('Create it first: CREATE ROLE %I LOGIN PASSWORD ''...''', p_role);
    END IF;
    IF v_role.rolsuper OR v_role.rolcreaterole OR v_role.rolbypassrls THEN
        RAISE EXCEPTION 'role % is a superuser or may create roles or bypass row security: it cannot be the runtime role', p_role
            USING ERRCODE = 'insufficient_privilege', HINT = 'Use a plain LOGIN role (NOSUPERUSER NOCREATEROLE).';
    END IF;
    IF pg_has_role(p_role, (SELECT nspowner FROM pg_namespace WHERE nspname = 'tollgate'), 'MEMBER')
       OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = 'tollgate'::regnamespace AND pg_has_role(p_role, c.relowner, 'MEMBER')) THEN
        RAISE EXCEPTION 'role % owns tollgate''s objects (or is a member of their owner): it cannot be the runtime role', p_role
            USING ERRCODE = 'insufficient_privilege', HINT = 'Run the gateway as another role, and migrate as this one.';
    END IF;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA tollgate FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA tollgate FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tollgate FROM %I', p_role);
    EXECUTE format('REVOKE ALL ON SCHEMA tollgate FROM %I', p_role);
    EXECUTE format('GRANT USAGE ON SCHEMA tollgate TO %I', p_role);
    EXECUTE format(
        'GRANT SELECT ON tollgate.events, tollgate.schema_migrations, tollgate.projection_checkpoints, tollgate.stream_summaries, '
        'tollgate.rate_windows, tollgate.approvals, tollgate.event_seals, tollgate.webhook_deliveries, tollgate.webhook_attempts TO %I', p_role);
    EXECUTE format(
        'GRANT INSERT, UPDATE ON tollgate.projection_checkpoints, tollgate.stream_summaries, tollgate.approvals, tollgate.webhook_deliveries TO %I',
        p_role);
    EXECUTE format('GRANT INSERT ON tollgate.event_seals, tollgate.webhook_attempts TO %I', p_role);
    -- The reviewer page's sessions: made at sign-in, moved on by each request, deleted at sign-out and expiry.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON tollgate.ui_sessions TO %I', p_role);
    EXECUTE format(
        'GRANT EXECUTE ON FUNCTION tollgate.append_events(text[], bigint[], int[], text[], jsonb[], jsonb[]), '
        'tollgate.append_singles(text[], bigint[], text[], jsonb[], jsonb[]), '
        'tollgate.reserve_and_append(int[], text[], text[], text[], bigint[], int[], numeric[], numeric[], text[], text[], jsonb[], jsonb[]), '
        'tollgate.reserve_counter(text, text, text, bigint, int, numeric, numeric), '
        'tollgate.release_counter(text, text, text, bigint, int, numeric), tollgate.reset_projection(text), '
        'tollgate.rebuild_rate_windows() TO %I', p_role);
    INSERT INTO tollgate.runtime_roles (role_name) VALUES (p_role)
    ON CONFLICT (role_name) DO UPDATE SET granted_at = now();
END
$$;
