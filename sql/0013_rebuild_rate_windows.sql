-- rebuild_rate_windows: `tollgate projections rebuild rate_windows` recomputes the rate windows from the log, as
-- 0003 said it would (until this migration no command did: the rate windows are written with each decision, in its
-- transaction, not by the projector, so `projections rebuild` knew no projection of that name).
--
-- A window's count is the fold of the log that RateWindowLedger (Sources/TollgateCore/Events/ToolCallEvents.swift)
-- computes: the reservations of every ToolCallDecided (only an allowed call records any) and of every ApprovalConsumed
-- (an approved call's, made as it was released), less those every ToolCallCompleted gave back (`released`: the call
-- provably did not run). A window whose count is 0 and a missing window mean the same.
--
-- Concurrent calls: the function first takes the table in EXCLUSIVE mode, which conflicts with the ROW EXCLUSIVE lock
-- every transaction that reserves or gives back holds until it ends. So no such transaction is in flight while the
-- windows are recomputed: each either committed before (its events are read by the fold) or waits, and then adds its
-- change to the rebuilt windows. Calls with limits wait for the rebuild; calls without do not.
--
-- SECURITY DEFINER (the runtime role moves windows only through functions), so grant_runtime is replaced to grant it.

CREATE FUNCTION tollgate.rebuild_rate_windows() RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_events bigint;
BEGIN
    LOCK TABLE tollgate.rate_windows IN EXCLUSIVE MODE;
    DELETE FROM tollgate.rate_windows;
    WITH folded AS (
        SELECT e.position, r.value AS reservation, CASE WHEN e.type = 'ToolCallCompleted' THEN -1 ELSE 1 END AS sign
        FROM tollgate.events e
        LEFT JOIN LATERAL jsonb_array_elements(
            CASE WHEN e.type = 'ToolCallCompleted' THEN e.data->'released' ELSE e.data->'reservations' END) AS r ON true
        WHERE e.type IN ('ToolCallDecided', 'ApprovalConsumed', 'ToolCallCompleted')
    ), inserted AS (
        INSERT INTO tollgate.rate_windows (server, counter, scope, window_start, window_seconds, count)
        SELECT reservation->>'server', reservation->>'counter', reservation->>'scope', (reservation->>'windowStart')::bigint,
               (reservation->>'windowSeconds')::int, sum(sign * (reservation->>'amount')::numeric)
        FROM folded WHERE reservation IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5
    )
    SELECT count(DISTINCT position) INTO v_events FROM folded;
    RETURN v_events;
END
$$;

REVOKE EXECUTE ON FUNCTION tollgate.rebuild_rate_windows() FROM PUBLIC;

-- grant_runtime as 0012 made it, with rebuild_rate_windows among the functions granted.
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
