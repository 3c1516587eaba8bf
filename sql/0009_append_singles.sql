-- append_singles: one event to each of several distinct streams, each at a known version, in one statement: the shape
-- of the gateway's call events (a decision opens a stream, an outcome follows version 1) and of most of the log's rows.
--
-- append_events (0008) takes any group, and pays for it: three statements, a loop that returns row by row, and a
-- check of the previous version's writer. At 1,000 calls/s it was about 40% of the database's CPU. With pgbench (one
-- client, prepared, a group of two new streams after a small SELECT, synchronous_commit off), a round took
-- 0.37-0.38 ms with append_events and 0.24-0.27 ms with this function.
--
-- The writer check is not needed when the append is its own transaction: that transaction's id is taken by its first
-- insert, after the statement's snapshot, so every version the snapshot shows was written by an older transaction
-- (the log's global order and the stream's agree). The function therefore refuses to run in a transaction that
-- already has an id; append_events stays the path for appends inside a caller's longer transaction.
--
-- An item is appended when version p_expected[i] exists (or p_expected[i] is 0) and version p_expected[i] + 1 does
-- not: ON CONFLICT DO NOTHING waits for a concurrent writer of that version, as the unique index does, and then
-- leaves the item out. Returns one row per item, in order: its position, or NULL when it was not appended.
--
-- A PL/pgSQL function rather than a statement prepared by the client, for its cached generic plan (SET below). The
-- gateway's connections plan each statement for its parameters (plan_cache_mode = force_custom_plan), and even
-- PostgreSQL's default planned this one again at every execution: a custom plan that knows the arrays' sizes always
-- looked cheaper than the generic one.
CREATE FUNCTION tollgate.append_singles(
    p_streams  text[],
    p_expected bigint[],
    p_types    text[],
    p_data     jsonb[],
    p_metadata jsonb[]
) RETURNS TABLE (item bigint, item_position bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'append_singles must run as its own transaction'
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'Use tollgate.append_events inside a longer transaction.';
    END IF;
    IF array_position(p_expected, NULL) IS NOT NULL
       OR (SELECT count(DISTINCT s) FROM unnest(p_streams) AS s) <> coalesce(array_length(p_streams, 1), 0) THEN
        RAISE EXCEPTION 'append_singles takes distinct streams, each with an expected version'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- LATERAL with LIMIT (which keeps PostgreSQL from flattening it into a join): one index probe per item, never a
    -- scan of the log, whatever the generic plan guesses of the arrays' sizes.
    RETURN QUERY
    WITH r AS (
        SELECT * FROM unnest(p_streams, p_expected, p_types, p_data, p_metadata) WITH ORDINALITY AS r(s, x, t, d, m, i)
    ), inserted AS (
        INSERT INTO tollgate.events (stream_id, version, type, data, metadata)
        SELECT r.s, r.x + 1, r.t, r.d, r.m FROM r
        LEFT JOIN LATERAL (
            SELECT true AS found FROM tollgate.events e WHERE r.x > 0 AND e.stream_id = r.s AND e.version = r.x LIMIT 1
        ) previous ON true
        WHERE r.x = 0 OR previous.found
        ORDER BY r.i
        ON CONFLICT (stream_id, version) DO NOTHING
        RETURNING stream_id, position
    )
    SELECT r.i, inserted.position FROM r LEFT JOIN inserted ON inserted.stream_id = r.s ORDER BY r.i;
END
$$;
