-- append_events without a subtransaction per stream, and with one INSERT for a whole group commit.
--
-- 0001's version caught unique_violation in a BEGIN ... EXCEPTION block, and PostgreSQL opens a subtransaction for
-- every entry into such a block; it also ran two or three statements per stream, each with its own executor start.
-- Under load that was about a third of the database's CPU. This version:
--   * lets INSERT ... ON CONFLICT DO NOTHING find a concurrent writer (it waits for that writer's transaction, as the
--     unique index did) and counts the rows that went in, so no subtransaction is needed;
--   * when the group's streams are distinct and each has an expected version (the gateway's call events: a decision
--     opens a new stream, an outcome follows version 1), checks every expected version with one query and inserts
--     every event with one statement; otherwise it takes the streams one at a time, as before.
--
-- The contract is 0001's: one result row per item, in order; `appended` false with the stream's committed version
-- when the expected version does not hold or a concurrent writer took it; serialization_failure when a stream's last
-- event was written by a newer transaction (the log's global order would otherwise disagree with the stream's).
--
-- How an item is checked:
--   expected 0 (no stream)   insert version 1 on: it conflicts exactly when the stream exists (versions start at 1).
--   expected v > 0           version v must exist (read with its writer), and version v + 1 must not (the insert).
--   expected NULL (any)      the stream's last version and its writer, then the insert after it.
-- An append of several events that lost only some of its versions to a concurrent writer cannot take back the rows it
-- did insert (events are never deleted, 0001's trigger): it fails with serialization_failure, the whole transaction
-- rolls back, and the event store retries it in a new one, where it sees the other writer's events.
CREATE OR REPLACE FUNCTION tollgate.append_events(
    p_streams  text[],
    p_expected bigint[],
    p_counts   int[],
    p_types    text[],
    p_data     jsonb[],
    p_metadata jsonb[]
) RETURNS TABLE (item int, appended boolean, stream_version bigint, last_position bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_n         int := coalesce(array_length(p_streams, 1), 0);
    v_ok        boolean[];
    v_newer     boolean;
    v_counts    int[];
    v_lasts     bigint[];
    v_offset    int := 0;
    v_current   bigint;
    v_count     int;
    v_writer    xid8;
    v_positions bigint[];
    v_inserted  int;
    v_me        xid8 := pg_current_xact_id();
BEGIN
    IF v_n > 1 AND array_position(p_expected, NULL) IS NULL
       AND (SELECT count(DISTINCT s) FROM unnest(p_streams) AS s) = v_n THEN
        -- LATERAL with LIMIT (which keeps PostgreSQL from flattening it into a join): one index probe per item, never a
        -- scan of the log, whatever the generic plan guesses of the arrays' sizes.
        SELECT array_agg(r.x = 0 OR w.writer IS NOT NULL ORDER BY r.i), coalesce(bool_or(w.writer > v_me), false)
        INTO v_ok, v_newer
        FROM unnest(p_streams, p_expected) WITH ORDINALITY AS r(s, x, i)
        LEFT JOIN LATERAL (
            SELECT e.transaction_id AS writer FROM tollgate.events e WHERE r.x > 0 AND e.stream_id = r.s AND e.version = r.x
            LIMIT 1
        ) w ON true;
        IF v_newer THEN
            RAISE EXCEPTION 'a stream in this group was last written by a newer transaction'
                USING ERRCODE = 'serialization_failure',
                      HINT = 'Retry the append in a new transaction.';
        END IF;
        WITH req AS (
            SELECT r.i::int AS i, r.s, r.x, r.n, (sum(r.n) OVER (ORDER BY r.i) - r.n)::int AS off
            FROM unnest(p_streams, p_expected, p_counts) WITH ORDINALITY AS r(s, x, n, i)
        ), inserted AS (
            INSERT INTO tollgate.events (stream_id, version, type, data, metadata)
            SELECT req.s, req.x + k, p_types[req.off + k], p_data[req.off + k], p_metadata[req.off + k]
            FROM req CROSS JOIN LATERAL generate_series(1, req.n) AS k
            WHERE v_ok[req.i]
            ORDER BY req.i, k
            ON CONFLICT (stream_id, version) DO NOTHING
            RETURNING stream_id, position
        ), per_stream AS (
            SELECT ins.stream_id, count(*)::int AS c, max(ins.position) AS last FROM inserted ins GROUP BY ins.stream_id
        )
        SELECT array_agg(coalesce(p.c, 0) ORDER BY req.i), array_agg(p.last ORDER BY req.i)
        INTO v_counts, v_lasts
        FROM req LEFT JOIN per_stream p ON p.stream_id = req.s;
        FOR i IN 1 .. v_n LOOP
            item := i;
            IF v_counts[i] = p_counts[i] THEN
                appended := true;
                stream_version := p_expected[i] + p_counts[i];
                last_position := v_lasts[i];
            ELSE
                IF v_counts[i] > 0 THEN
                    RAISE EXCEPTION 'stream % was written by a concurrent transaction while this append was under way', p_streams[i]
                        USING ERRCODE = 'serialization_failure',
                              HINT = 'Retry the append in a new transaction.';
                END IF;
                appended := false;
                last_position := NULL;
                SELECT coalesce(max(e.version), 0) INTO stream_version FROM tollgate.events e WHERE e.stream_id = p_streams[i];
            END IF;
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;

    FOR i IN 1 .. v_n LOOP
        v_count := p_counts[i];
        v_writer := NULL;
        appended := false;
        last_position := NULL;
        IF p_expected[i] = 0 THEN
            v_current := 0;
        ELSIF p_expected[i] IS NOT NULL THEN
            SELECT e.transaction_id INTO v_writer FROM tollgate.events e
            WHERE e.stream_id = p_streams[i] AND e.version = p_expected[i];
            v_current := CASE WHEN FOUND THEN p_expected[i] END;
        ELSE
            SELECT e.version, e.transaction_id INTO v_current, v_writer FROM tollgate.events e
            WHERE e.stream_id = p_streams[i] ORDER BY e.version DESC LIMIT 1;
            IF NOT FOUND THEN
                v_current := 0;
            END IF;
        END IF;
        IF v_current IS NOT NULL THEN
            IF v_writer > v_me THEN
                RAISE EXCEPTION 'stream % was last written by a newer transaction', p_streams[i]
                    USING ERRCODE = 'serialization_failure',
                          HINT = 'Retry the append in a new transaction.';
            END IF;
            WITH inserted AS (
                INSERT INTO tollgate.events (stream_id, version, type, data, metadata)
                SELECT p_streams[i], v_current + k, p_types[v_offset + k], p_data[v_offset + k], p_metadata[v_offset + k]
                FROM generate_series(1, v_count) AS k
                ORDER BY k
                ON CONFLICT (stream_id, version) DO NOTHING
                RETURNING position
            )
            SELECT array_agg(position ORDER BY position) INTO v_positions FROM inserted;
            v_inserted := coalesce(array_length(v_positions, 1), 0);
            IF v_inserted = v_count THEN
                appended := true;
                v_current := v_current + v_count;
                last_position := v_positions[v_inserted];
            ELSIF v_inserted > 0 THEN
                RAISE EXCEPTION 'stream % was written by a concurrent transaction while this append was under way', p_streams[i]
                    USING ERRCODE = 'serialization_failure',
                          HINT = 'Retry the append in a new transaction.';
            END IF;
        END IF;
        IF NOT appended THEN
            SELECT coalesce(max(e.version), 0) INTO v_current FROM tollgate.events e WHERE e.stream_id = p_streams[i];
        END IF;
        item := i;
        stream_version := v_current;
        RETURN NEXT;
        v_offset := v_offset + v_count;
    END LOOP;
END
$$;
