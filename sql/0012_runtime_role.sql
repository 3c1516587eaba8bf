-- Least privilege around the log: an owner role that migrates and owns every object, and a runtime role that can only
-- do what the gateway does. The migrations run as the owner; `tollgate.grant_runtime(role)` gives a runtime role its
-- privileges (`tollgate migrate --grant-runtime ROLE`; `tollgate serve` calls it for the role of --database when it is
-- given --migration-database, and for the embedded cluster's `tollgate_runtime`).
--
-- The runtime role:
--   * appends events only through append_events, append_singles and reserve_and_append, which run as the owner
--     (SECURITY DEFINER, fixed search_path): it has no INSERT, UPDATE, DELETE or TRUNCATE on tollgate.events, so no
--     INSERT ... OVERRIDING SYSTEM VALUE either, and cannot disable the append-only triggers (only an owner can);
--   * moves rate windows only through reserve_counter and release_counter (SECURITY DEFINER as well);
--   * inserts seals and reads them, and can never update or delete one;
--   * writes tollgate.approvals only as its fold of the log: a trigger owned by the owner checks every row written
--     against the approval's stream (status, use, version, request), so no row says "approved" without the quorum of
--     ApprovalGranted events that makes it so;
--   * empties a projection for a rebuild only through reset_projection;
--   * holds no TRIGGER, TRUNCATE or REFERENCES privilege, owns nothing, and must not be a superuser.
-- The remaining plain grants, and why: stream_summaries (a listing nothing decides on), projection_checkpoints (moving
-- one makes a projection replay or skip: the approvals rows are written with their events, and a skipped seal is an
-- unsealed event that `audit verify` reports), and the webhook outbox (delivery bookkeeping; the log is what is true).

-- Which roles were given runtime privileges: later migrations grant them again (Migrator does it after applying).
CREATE TABLE tollgate.runtime_roles (
    role_name  name        PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);

ALTER FUNCTION tollgate.append_events(text[], bigint[], int[], text[], jsonb[], jsonb[])
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION tollgate.append_singles(text[], bigint[], text[], jsonb[], jsonb[])
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION tollgate.reserve_and_append(int[], text[], text[], text[], bigint[], int[], numeric[], numeric[], text[], text[], jsonb[], jsonb[])
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION tollgate.reserve_counter(text, text, text, bigint, int, numeric, numeric)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION tollgate.release_counter(text, text, text, bigint, int, numeric)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION tollgate.refuse_event_change() SET search_path = pg_catalog, pg_temp;

-- Empties a projection's table for `tollgate projections rebuild` (in the rebuild's transaction) and moves its checkpoint
-- back to the start, so a reset that no rebuild follows is refilled by the projector.
CREATE FUNCTION tollgate.reset_projection(p_name text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE p_name
        WHEN 'streams' THEN TRUNCATE tollgate.stream_summaries;
        WHEN 'approvals' THEN TRUNCATE tollgate.approvals;
        ELSE RAISE EXCEPTION 'projection % cannot be reset', p_name USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    UPDATE tollgate.projection_checkpoints SET transaction_id = '0', position = 0, updated_at = now() WHERE name = p_name;
END
$$;

-- Every row written to tollgate.approvals must be the fold of its stream `approval-<id>` at the row's version, as
-- Approval.apply (Sources/TollgateCore/Approvals/Approval.swift) folds it: the first event is the request; a grant counts
-- while pending and once per reviewer, and `quorum` distinct reviewers approve; a denial or an expiry decides a pending
-- request; a consumption marks an approved one used, once; anything else moves the version only. Checked: the version,
-- the status, the use, the granting reviewers, the request (as the state holds it) and the columns copied from it.
CREATE FUNCTION tollgate.approval_matches_log() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stream   text := 'approval-' || NEW.approval_id::text;
    v_count    bigint := 0;
    v_request  jsonb;
    v_quorum   int;
    v_status   text := 'pending';
    v_grants   text[] := '{}';
    v_consumed boolean := false;
    v_reviewer text;
    v_use      text;
    r          record;
BEGIN
    FOR r IN
        SELECT e.version, e.type, e.data FROM tollgate.events e
        WHERE e.stream_id = v_stream AND e.version <= NEW.version ORDER BY e.version
    LOOP
        v_count := v_count + 1;
        IF r.version <> v_count OR r.type NOT IN ('ApprovalRequested', 'ApprovalGranted', 'ApprovalDenied', 'ApprovalExpired', 'ApprovalConsumed') THEN
            RAISE EXCEPTION 'approval %: event % of its stream is not an approval event', NEW.approval_id, r.version
                USING ERRCODE = 'TG002';
        END IF;
        IF v_count = 1 THEN
            IF r.type <> 'ApprovalRequested' THEN
                RAISE EXCEPTION 'approval %: its stream does not start with ApprovalRequested', NEW.approval_id USING ERRCODE = 'TG002';
            END IF;
            v_request := r.data;
            v_quorum := (r.data->>'quorum')::int;
            CONTINUE;
        END IF;
        CASE r.type
            WHEN 'ApprovalGranted' THEN
                v_reviewer := r.data->>'reviewer';
                IF v_status = 'pending' AND v_reviewer IS NOT NULL AND NOT v_reviewer = ANY (v_grants) THEN
                    v_grants := v_grants || v_reviewer;
                    IF cardinality(v_grants) >= v_quorum THEN v_status := 'approved'; END IF;
                END IF;
            WHEN 'ApprovalDenied' THEN
                IF v_status = 'pending' THEN v_status := 'denied'; END IF;
            WHEN 'ApprovalExpired' THEN
                IF v_status = 'pending' THEN v_status := 'expired'; END IF;
            WHEN 'ApprovalConsumed' THEN
                IF v_status = 'approved' AND NOT v_consumed THEN v_consumed := true; END IF;
            ELSE
                NULL;
        END CASE;
    END LOOP;
    IF v_count = 0 OR v_count <> NEW.version THEN
        RAISE EXCEPTION 'approval % claims version % but the log holds % event(s) of stream %', NEW.approval_id, NEW.version, v_count, v_stream
            USING ERRCODE = 'TG002', HINT = 'tollgate.approvals is a projection of the log: append the events, then fold them.';
    END IF;
    IF NEW.status <> v_status OR NEW.state->>'status' IS DISTINCT FROM v_status THEN
        RAISE EXCEPTION 'approval % cannot be %: the log makes it % (% of % approvals)', NEW.approval_id, NEW.status, v_status,
            cardinality(v_grants), v_quorum
            USING ERRCODE = 'TG002', HINT = 'An approval is approved by its quorum of ApprovalGranted events in the log.';
    END IF;
    v_use := coalesce(jsonb_typeof(NEW.state->'consumption'), 'null');
    IF NEW.consumed <> v_consumed OR (v_use = 'object') <> v_consumed OR v_use NOT IN ('object', 'null') THEN
        RAISE EXCEPTION 'approval %: used is % in the row, % in the log', NEW.approval_id, NEW.consumed, v_consumed USING ERRCODE = 'TG002';
    END IF;
    IF (NEW.state->>'version')::bigint IS DISTINCT FROM NEW.version
       OR NEW.state->'request' IS DISTINCT FROM v_request
       OR coalesce(jsonb_path_query_array(NEW.state, '$.grants[*].reviewer'), '[]') <> to_jsonb(v_grants)
       OR NEW.agent <> v_request->>'agent' OR NEW.server <> v_request->>'server' OR NEW.tool <> v_request->>'tool'
       OR NEW.arguments_hash <> v_request->>'argumentsHash' OR NEW.policy_hash <> v_request->>'policyHash'
       -- Times as the log writes them (milliseconds); the columns hold the same instants.
       OR abs(extract(epoch FROM NEW.requested_at - (v_request->>'requestedAt')::timestamptz)) >= 0.001
       OR abs(extract(epoch FROM NEW.expires_at - (v_request->>'expiresAt')::timestamptz)) >= 0.001 THEN
        RAISE EXCEPTION 'approval %: the row differs from its request and decisions in the log', NEW.approval_id USING ERRCODE = 'TG002';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER approvals_match_log
    BEFORE INSERT OR UPDATE ON tollgate.approvals
    FOR EACH ROW EXECUTE FUNCTION tollgate.approval_matches_log();

-- Gives `p_role` exactly the runtime privileges (everything it held in the schema before is revoked first), and
-- records it in tollgate.runtime_roles. Run by the owner; refuses a role that is a superuser, may create roles, or
-- owns (or may become the owner of) the schema.
CREATE FUNCTION tollgate.grant_runtime(p_role name) RETURNS void
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
        'tollgate.release_counter(text, text, text, bigint, int, numeric), tollgate.reset_projection(text) TO %I', p_role);
    INSERT INTO tollgate.runtime_roles (role_name) VALUES (p_role)
    ON CONFLICT (role_name) DO UPDATE SET granted_at = now();
END
$$;

-- Functions are executable by PUBLIC by default: nobody but the roles granted above may run tollgate's.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA tollgate FROM PUBLIC;
REVOKE ALL ON SCHEMA tollgate FROM PUBLIC;
