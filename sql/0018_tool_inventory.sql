-- Projection "inventory": one row per (server, tool) the gateway has seen an upstream list, the fold of the server's
-- stream `tools-<server>` (ToolDefinitionObserved, ToolDefinitionChanged, ToolRemoved; docs/inventory.md): the current
-- definition and its hash, the rating, when it was first and last recorded, how many times its definition changed, the
-- last change's diff, and whether it was removed. Written by the projector, which skips events a row already holds
-- (`version`, the stream's version of the row's last event); `tollgate projections rebuild inventory` replays the log.
CREATE TABLE tollgate.tool_inventory (
    server           text        NOT NULL,
    tool             text        NOT NULL,
    version          bigint      NOT NULL,
    hash             text        NOT NULL,
    definition       jsonb,                 -- null when over the size cap (docs/inventory.md)
    definition_bytes int         NOT NULL,
    category         text        NOT NULL,
    level            text        NOT NULL,
    reasons          jsonb       NOT NULL,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    changes          int         NOT NULL,
    last_change      jsonb,                 -- the last ToolDefinitionChanged's data (old and new hash, the diff)
    removed          boolean     NOT NULL,
    PRIMARY KEY (server, tool)
);

-- reset_projection as 0017 made it, with "inventory" among the projections it empties.
CREATE OR REPLACE FUNCTION tollgate.reset_projection(p_name text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE p_name
        WHEN 'streams' THEN TRUNCATE tollgate.stream_summaries;
        WHEN 'approvals' THEN TRUNCATE tollgate.approvals;
        WHEN 'decisions' THEN TRUNCATE tollgate.decision_minutes, tollgate.tool_minutes;
        WHEN 'inventory' THEN TRUNCATE tollgate.tool_inventory;
        ELSE RAISE EXCEPTION 'projection % cannot be reset', p_name USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    UPDATE tollgate.projection_checkpoints SET transaction_id = '0', position = 0, updated_at = now() WHERE name = p_name;
END
$$;

-- grant_runtime as 0017 made it, with the inventory among the tables read and written.
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
    -- The overview's counts: read by the page, written only through count_decisions and reset_projection.
    EXECUTE format('GRANT SELECT ON tollgate.decision_minutes, tollgate.tool_minutes TO %I', p_role);
    -- The tool inventory: written by the projector, read by `tollgate inventory`.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON tollgate.tool_inventory TO %I', p_role);
    EXECUTE format(
        'GRANT EXECUTE ON FUNCTION tollgate.append_events(text[], bigint[], int[], text[], jsonb[], jsonb[]), '
        'tollgate.append_singles(text[], bigint[], text[], jsonb[], jsonb[]), '
        'tollgate.reserve_and_append(int[], text[], text[], text[], bigint[], int[], numeric[], numeric[], text[], text[], jsonb[], jsonb[]), '
        'tollgate.reserve_counter(text, text, text, bigint, int, numeric, numeric), '
        'tollgate.release_counter(text, text, text, bigint, int, numeric), tollgate.reset_projection(text), '
        'tollgate.rebuild_rate_windows(), tollgate.count_decisions(bigint[], text, text, int, int) TO %I', p_role);
    INSERT INTO tollgate.runtime_roles (role_name) VALUES (p_role)
    ON CONFLICT (role_name) DO UPDATE SET granted_at = now();
END
$$;
