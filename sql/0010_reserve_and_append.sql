-- reserve_and_append: a group of decisions with counter reservations, in one statement (one round trip): each
-- decision's reservations are made in the order given, a decision is admitted only if every one of them fits, the
-- reservations of a refused decision that were already made are taken back, and each admitted decision's event opens
-- its stream (version 1).
--
-- The gateway did this with a statement per reservation inside BEGIN ... COMMIT, four round trips or more for each
-- group, each planned again; with one rate limit that every call counts against, that path reached about 2,000 calls/s
-- at saturation against 2,500-3,100 without limits.
--
-- r_* are the reservations, in lock order (every transaction that touches counters takes them in one order, so two
-- cannot deadlock): r_items[k] is the decision (1-based) reservation k belongs to. p_* are the decisions. Each
-- reservation is admitted with one statement that is exact under concurrency, across processes (0003):
--   INSERT ... ON CONFLICT DO UPDATE SET count = count + amount WHERE count + amount <= ceiling
-- Returns one row per decision, in order: refused_by, the reservation (1-based) that found no room, or NULL; and the
-- position of its event when it was admitted. A decision whose stream already exists fails the whole statement
-- (unique_violation), so nothing of the group is kept: reservations never count a call the log does not hold.
--
-- The events open new streams, so no previous version's writer needs checking (see 0009), and the function may run
-- inside a longer transaction.
CREATE FUNCTION tollgate.reserve_and_append(
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
        INSERT INTO tollgate.rate_windows AS w (server, counter, scope, window_start, window_seconds, count)
        SELECT r_servers[k], r_counters[k], r_scopes[k], r_starts[k], r_seconds[k], r_amounts[k]
        WHERE r_amounts[k] <= r_ceilings[k]
        ON CONFLICT (server, counter, scope, window_start, window_seconds)
        DO UPDATE SET count = w.count + EXCLUDED.count WHERE w.count + EXCLUDED.count <= r_ceilings[k];
        IF FOUND THEN
            v_made[k] := true;
        ELSE
            v_refused[r_items[k]] := k;
        END IF;
    END LOOP;
    -- A refused decision's reservations made before its refusal are taken back: the rows are still locked by this
    -- transaction, so no other one saw them.
    FOR k IN 1 .. v_count LOOP
        CONTINUE WHEN NOT v_made[k] OR v_refused[r_items[k]] IS NULL;
        UPDATE tollgate.rate_windows SET count = count - r_amounts[k]
        WHERE server = r_servers[k] AND counter = r_counters[k] AND scope = r_scopes[k]
          AND window_start = r_starts[k] AND window_seconds = r_seconds[k];
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
