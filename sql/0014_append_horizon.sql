-- The log's readers wait only for transactions that can append events, not for every transaction of the cluster.
--
-- Readers used to read rows whose transaction id is below pg_snapshot_xmin(pg_current_snapshot()) (0001): the oldest
-- transaction still running anywhere in the cluster, so one idle `BEGIN; SELECT pg_current_xact_id();` in any session
-- (any database, any role) held back every projection, seal, webhook and held call's release for as long as it stayed
-- open.
--
-- Now every transaction that appends to tollgate.events holds the append lock, a shared transaction-level advisory
-- lock ("toll", 1), from before it has a transaction id:
--   * PostgresConnection.transaction takes it right after BEGIN, for every transaction the gateway opens;
--   * a statement-level trigger on tollgate.events takes it before any row is inserted, so no path can skip it; in a
--     transaction that already has an id without holding the lock, it refuses the append (serialization_failure: a new
--     transaction succeeds), because a reader may already have moved past that id;
--   * append_events (which takes its id on entry) and reserve_and_append (which writes rate windows first) take it
--     before anything else.
-- The readers' horizon (EventStore.horizonSQL) is then the least transaction id among the lock's holders, or the next
-- transaction id when none holds it with an id, read from pg_locks in a statement before the one that reads the rows:
-- a holder's later rows have ids at or above it, a transaction that gets its id later has a greater one, and one that
-- ended before the horizon was read is visible to the later statement. Shared: appends never wait for each other.

-- Takes the append lock in the current transaction, or refuses when the transaction already has an id without it.
CREATE FUNCTION tollgate.take_append_lock() RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF pg_catalog.current_setting('tollgate.append_lock', true) IS NOT DISTINCT FROM 'on' THEN
        RETURN;
    END IF;
    IF pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
        WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted
          AND l.classid = 1953459308 AND l.objid = 1 AND l.objsubid = 2
    ) THEN
        RAISE EXCEPTION 'an append to tollgate.events in a transaction that wrote before taking the log''s append lock'
            USING ERRCODE = 'serialization_failure',
                  HINT = 'Take it first (SELECT pg_advisory_xact_lock_shared(1953459308, 1)), or append in a new transaction.';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(1953459308, 1);
    PERFORM pg_catalog.set_config('tollgate.append_lock', 'on', true);
END
$$;

CREATE FUNCTION tollgate.events_take_append_lock() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM tollgate.take_append_lock();
    RETURN NULL;
END
$$;

CREATE TRIGGER events_append_lock
    BEFORE INSERT ON tollgate.events
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate.events_take_append_lock();

-- append_events takes its transaction's id on entry, and reserve_and_append reserves (which takes one) before it
-- appends: each becomes a wrapper that takes the lock first.
ALTER FUNCTION tollgate.append_events(text[], bigint[], int[], text[], jsonb[], jsonb[]) RENAME TO append_events_unlocked;

CREATE FUNCTION tollgate.append_events(
    p_streams  text[],
    p_expected bigint[],
    p_counts   int[],
    p_types    text[],
    p_data     jsonb[],
    p_metadata jsonb[]
) RETURNS TABLE (item int, appended boolean, stream_version bigint, last_position bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM tollgate.take_append_lock();
    RETURN QUERY SELECT u.item, u.appended, u.stream_version, u.last_position
    FROM tollgate.append_events_unlocked(p_streams, p_expected, p_counts, p_types, p_data, p_metadata) AS u;
END
$$;

ALTER FUNCTION tollgate.reserve_and_append(int[], text[], text[], text[], bigint[], int[], numeric[], numeric[], text[], text[], jsonb[], jsonb[])
    RENAME TO reserve_and_append_unlocked;

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
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM tollgate.take_append_lock();
    RETURN QUERY SELECT u.item, u.refused_by, u.item_position FROM tollgate.reserve_and_append_unlocked(
        r_items, r_servers, r_counters, r_scopes, r_starts, r_seconds, r_amounts, r_ceilings, p_streams, p_types, p_data, p_metadata) AS u;
END
$$;

REVOKE EXECUTE ON FUNCTION tollgate.take_append_lock(), tollgate.events_take_append_lock() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tollgate.append_events_unlocked(text[], bigint[], int[], text[], jsonb[], jsonb[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tollgate.append_events(text[], bigint[], int[], text[], jsonb[], jsonb[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tollgate.reserve_and_append_unlocked(int[], text[], text[], text[], bigint[], int[], numeric[], numeric[], text[], text[], jsonb[], jsonb[])
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tollgate.reserve_and_append(int[], text[], text[], text[], bigint[], int[], numeric[], numeric[], text[], text[], jsonb[], jsonb[])
    FROM PUBLIC;
