-- Projection "decisions": how many tools/call decisions each minute, by decision, and by tool, for the reviewer page's
-- overview (`GET /ui/overview`, docs/reviewers.md). Counting the log itself would read every ToolCallDecided of the last
-- hour at each page load (3.6 million at 1,000 calls/s); these tables hold at most a few hundred rows a minute.
--
-- Fed by the projector from ToolCallDecided (one call each, in the minute it was recorded) and RefusalsSummarized (the
-- refusals past an agent's budget, in the minute the summary's window starts; its `otherCount` refusals, whose decision
-- the summary does not keep, as decision `refused` of no tool). Rows older than `p_keep_minutes` before the newest minute
-- counted are dropped as the projector goes, so the tables stay small; a rebuild replays the log into the same counts
-- (past the cap below, which tools are named may differ).
CREATE TABLE tollgate.decision_minutes (
    minute   timestamptz NOT NULL,
    decision text        NOT NULL,
    calls    bigint      NOT NULL,
    PRIMARY KEY (minute, decision)
);

-- By tool: at most `p_max_named_tools` (server, tool) pairs are counted by name in one minute (the first ones seen, the
-- busiest first within a batch); the calls of any other tool in that minute are counted under server '' and tool '' ("other
-- tools"). A tool name can come from an agent (a hidden or unknown tool) or an upstream: this keeps a flood of made-up
-- names from growing the table or the page.
CREATE TABLE tollgate.tool_minutes (
    minute   timestamptz NOT NULL,
    server   text        NOT NULL,
    tool     text        NOT NULL,
    decision text        NOT NULL,
    calls    bigint      NOT NULL,
    PRIMARY KEY (minute, server, tool, decision)
);

-- Counts the events at `p_positions` of types `p_decided` (ToolCallDecided) and `p_summarized` (RefusalsSummarized)
-- into the two tables, then drops the minutes older than `p_keep_minutes` before the newest one counted. Runs as the
-- owner: the runtime role reads these tables but writes them only through this function and reset_projection. Returns
-- the calls counted.
CREATE FUNCTION tollgate.count_decisions(
    p_positions       bigint[],
    p_decided         text,
    p_summarized      text,
    p_max_named_tools int,
    p_keep_minutes    int
) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_calls  bigint;
    v_newest timestamptz;
BEGIN
    WITH counted AS (
        SELECT date_trunc('minute', e.recorded_at) AS minute, coalesce(e.data->>'server', '') AS server,
               coalesce(e.data->>'tool', '') AS tool, coalesce(e.data->>'decision', 'refused') AS decision, 1::bigint AS calls
        FROM tollgate.events e
        WHERE e.position = ANY(p_positions) AND e.type = p_decided
        UNION ALL
        SELECT date_trunc('minute', coalesce((e.data->>'windowStart')::timestamptz, e.recorded_at)), coalesce(x->>'server', ''),
               coalesce(x->>'tool', ''), coalesce(x->>'decision', 'refused'), coalesce((x->>'count')::bigint, 0)
        FROM tollgate.events e CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(e.data->'entries') = 'array' THEN e.data->'entries' ELSE '[]'::jsonb END) AS x
        WHERE e.position = ANY(p_positions) AND e.type = p_summarized
        UNION ALL
        SELECT date_trunc('minute', coalesce((e.data->>'windowStart')::timestamptz, e.recorded_at)), '', '', 'refused',
               coalesce((e.data->>'otherCount')::bigint, 0)
        FROM tollgate.events e
        WHERE e.position = ANY(p_positions) AND e.type = p_summarized
    ), batch AS (
        SELECT c.minute, c.server, c.tool, c.decision, sum(c.calls)::bigint AS calls
        FROM counted c WHERE c.calls > 0
        GROUP BY c.minute, c.server, c.tool, c.decision
    ), by_decision AS (
        INSERT INTO tollgate.decision_minutes AS d (minute, decision, calls)
        SELECT b.minute, b.decision, sum(b.calls) FROM batch b GROUP BY b.minute, b.decision
        ON CONFLICT (minute, decision) DO UPDATE SET calls = d.calls + EXCLUDED.calls
    ), tools AS (
        SELECT b.minute, b.server, b.tool, sum(b.calls) AS calls FROM batch b GROUP BY b.minute, b.server, b.tool
    ), known AS (
        -- The tools each of the batch's minutes already counts (on the primary key, a minute at a time).
        SELECT DISTINCT m.minute, t.server, t.tool
        FROM (SELECT DISTINCT b.minute FROM batch b) m
        CROSS JOIN LATERAL (SELECT k.server, k.tool FROM tollgate.tool_minutes k WHERE k.minute = m.minute) t
    ), named_before AS (
        SELECT k.minute, count(*) AS named FROM known k WHERE k.server <> '' GROUP BY k.minute
    ), ranked AS (
        SELECT t.minute, t.server, t.tool, k.minute IS NOT NULL AS known,
               row_number() OVER (PARTITION BY t.minute, k.minute IS NOT NULL ORDER BY t.calls DESC, t.server, t.tool) AS rank
        FROM tools t LEFT JOIN known k ON k.minute = t.minute AND k.server = t.server AND k.tool = t.tool
    ), placed AS (
        SELECT b.minute, b.decision, b.calls, b.server, b.tool,
               r.known OR b.server = '' OR r.rank <= p_max_named_tools - coalesce(n.named, 0) AS named
        FROM batch b
        JOIN ranked r ON r.minute = b.minute AND r.server = b.server AND r.tool = b.tool
        LEFT JOIN named_before n ON n.minute = b.minute
    ), by_tool AS (
        INSERT INTO tollgate.tool_minutes AS t (minute, server, tool, decision, calls)
        SELECT p.minute, CASE WHEN p.named THEN p.server ELSE '' END, CASE WHEN p.named THEN p.tool ELSE '' END, p.decision, sum(p.calls)
        FROM placed p
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (minute, server, tool, decision) DO UPDATE SET calls = t.calls + EXCLUDED.calls
    )
    SELECT coalesce(sum(b.calls), 0), max(b.minute) INTO v_calls, v_newest FROM batch b;

    IF v_newest IS NOT NULL THEN
        DELETE FROM tollgate.decision_minutes WHERE minute < v_newest - make_interval(mins => p_keep_minutes);
        DELETE FROM tollgate.tool_minutes WHERE minute < v_newest - make_interval(mins => p_keep_minutes);
    END IF;
    RETURN v_calls;
END
$$;

REVOKE EXECUTE ON FUNCTION tollgate.count_decisions(bigint[], text, text, int, int) FROM PUBLIC;

-- reset_projection as 0012 made it, with "decisions" among the projections it empties.
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
        ELSE RAISE EXCEPTION 'projection % cannot be reset', p_name USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    UPDATE tollgate.projection_checkpoints SET transaction_id = '0', position = 0, updated_at = now() WHERE name = p_name;
END
$$;

-- History's filters (`GET /ui/history?server=&agent=&tool=`): decided requests of one server, agent or tool, newest
-- first, without reading every request of the others.
CREATE INDEX approvals_by_server_requested ON tollgate.approvals (server, requested_at DESC, approval_id);
CREATE INDEX approvals_by_agent_requested ON tollgate.approvals (agent, requested_at DESC, approval_id);
CREATE INDEX approvals_by_tool_requested ON tollgate.approvals (tool, requested_at DESC, approval_id);

-- grant_runtime as 0016 made it, with the overview's counts among the tables read and count_decisions among the functions.
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
