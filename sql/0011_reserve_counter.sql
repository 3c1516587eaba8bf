-- reserve_counter and release_counter: the one rule for taking from a rate window and giving back, in one place.
--
-- Until now it was written twice: in reserve_and_append (0010), for the decisions of the gateway's group commit, and in
-- the gateway's own statements, for reservations made inside a longer transaction (an approved call's consumption,
-- and a failed call's give-back). Both now call these functions, and reserve_and_append is replaced with the same
-- body as 0010's but for the two statements it now calls.
--
-- A reservation is admitted with one statement that is exact under concurrency, across processes (0003):
--   INSERT ... ON CONFLICT DO UPDATE SET count = count + amount WHERE count + amount <= ceiling
-- The conflicting row is locked and the WHERE re-checked on its newest version: true when the amount was added,
-- false when the window has no room for it (the caller's transaction then takes back what it made, or rolls back).
-- The row stays locked until the caller's transaction ends, so a caller that reserves several windows takes them in
-- one order (every transaction that touches counters does), and two cannot deadlock.
--
-- PL/pgSQL rather than SQL functions: PostgreSQL 15 plans a SQL function's statements again at each call, where
-- PL/pgSQL keeps them for the session. Inside reserve_and_append they run under its force_generic_plan.
CREATE FUNCTION tollgate.reserve_counter(
    p_server text, p_counter text, p_scope text, p_start bigint, p_seconds int, p_amount numeric, p_ceiling numeric
) RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO tollgate.rate_windows AS w (server, counter, scope, window_start, window_seconds, count)
    SELECT p_server, p_counter, p_scope, p_start, p_seconds, p_amount
    WHERE p_amount <= p_ceiling
    ON CONFLICT (server, counter, scope, window_start, window_seconds)
    DO UPDATE SET count = w.count + EXCLUDED.count WHERE w.count + EXCLUDED.count <= p_ceiling;
    RETURN FOUND;
END
$$;

-- Gives `p_amount` back to a window (a refused decision's earlier reservations, a failed call's quota).
CREATE FUNCTION tollgate.release_counter(
    p_server text, p_counter text, p_scope text, p_start bigint, p_seconds int, p_amount numeric
) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE tollgate.rate_windows SET count = count - p_amount
    WHERE server = p_server AND counter = p_counter AND scope = p_scope
      AND window_start = p_start AND window_seconds = p_seconds;
END
$$;

CREATE OR REPLACE FUNCTION tollgate.reserve_and_append(
    r_items    int[],
    r_servers  text[],
    r_counters text[],
    r_scopes   text[],
    r_starts   bigint[],
    r_seconds  int[],
    r_amounts  numeric[],
    r_ceilings numeric[],
    p_streams  text[],
    p_types    text[],
    p_data     jsonb[],
    p_metadata jsonb[]
) RETURNS TABLE (item int, refused_by int, item_position bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_items    int := coalesce(array_length(p_streams, 1), 0);
    v_count    int := coalesce(array_length(r_items, 1), 0);
    v_refused  int[] := array_fill(NULL::int, ARRAY[v_items]);
    v_made     boolean[] := array_fill(false, ARRAY[v_count]);
    v_admitted int;
    v_inserted int;
    v_positions bigint[];
BEGIN
    IF (SELECT bool_or(x IS NULL OR x < 1 OR x > v_items) FROM unnest(r_items) AS x)
       OR (SELECT count(DISTINCT s) FROM unnest(p_streams) AS s) <> v_items THEN
        RAISE EXCEPTION 'each reservation names a decision of the group, and each decision its own stream'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN 1 .. v_count LOOP
        CONTINUE WHEN v_refused[r_items[k]] IS NOT NULL;
        IF tollgate.reserve_counter(r_servers[k], r_counters[k], r_scopes[k], r_starts[k], r_seconds[k], r_amounts[k], r_ceilings[k]) THEN
            v_made[k] := true;
        ELSE
            v_refused[r_items[k]] := k;
        END IF;
    END LOOP;
    -- A refused decision's reservations made before its refusal are taken back: the rows are still locked by this
    -- transaction, so no other one saw them.
    FOR k IN 1 .. v_count LOOP
        CONTINUE WHEN NOT v_made[k] OR v_refused[r_items[k]] IS NULL;
        PERFORM tollgate.release_counter(r_servers[k], r_counters[k], r_scopes[k], r_starts[k], r_seconds[k], r_amounts[k]);
    END LOOP;
    SELECT count(*) INTO v_admitted FROM generate_subscripts(p_streams, 1) AS i WHERE v_refused[i] IS NULL;
    WITH r AS (
        SELECT * FROM unnest(p_streams, p_types, p_data, p_metadata) WITH ORDINALITY AS r(s, t, d, m, i)
    ), inserted AS (
        INSERT INTO tollgate.events (stream_id, version, type, data, metadata)
        SELECT r.s, 1, r.t, r.d, r.m FROM r WHERE v_refused[r.i] IS NULL
        ORDER BY r.i
        ON CONFLICT (stream_id, version) DO NOTHING
        RETURNING stream_id, position
    )
    SELECT array_agg(inserted.position ORDER BY r.i), count(inserted.position)
    INTO v_positions, v_inserted
    FROM r LEFT JOIN inserted ON inserted.stream_id = r.s;
    IF v_inserted <> v_admitted THEN
        RAISE EXCEPTION 'a decision''s stream already exists'
            USING ERRCODE = 'unique_violation',
                  HINT = 'Each decision opens a new stream.';
    END IF;
    RETURN QUERY SELECT i::int, v_refused[i], v_positions[i] FROM generate_subscripts(p_streams, 1) AS i ORDER BY i;
END
$$;
