-- The append-only event log: the only source of truth. Every other table is a projection of it.
--
-- Readers must never skip an event whose transaction commits after a higher-numbered one (the gap problem of
-- sequence-numbered logs). Each row records the id of the transaction that wrote it; readers only read rows
-- whose transaction id is below the oldest transaction still running (pg_snapshot_xmin), in the order
-- (transaction_id, position), and keep that pair as their checkpoint. Every row that can still appear has a
-- transaction id at or above that bound, so it sorts after anything already read.

CREATE TABLE tollgate.events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text        NOT NULL CHECK (length(stream_id) BETWEEN 1 AND 200),
    version        bigint      NOT NULL CHECK (version >= 1),
    type           text        NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);

CREATE INDEX events_commit_order ON tollgate.events (transaction_id, position);

-- Events are never changed or removed, whoever asks (short of a superuser disabling the triggers, which the
-- audit chain detects).
CREATE FUNCTION tollgate.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tollgate.events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'TG001',
              HINT = 'Record a new event that corrects the earlier one instead.';
END
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON tollgate.events
    FOR EACH ROW EXECUTE FUNCTION tollgate.refuse_event_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON tollgate.events
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate.refuse_event_change();

-- Appends several streams' events in one statement (one transaction, one commit), each stream's batch all or
-- nothing. p_expected[i] is the version stream i must be at (0: must not exist yet), or NULL for any version.
-- Item i's events are p_types/p_data/p_metadata[offset + 1 .. offset + p_counts[i]].
-- Returns one row per item: whether it was appended, the stream's version after it (or the actual version
-- that did not match), and the position of its last event.
--
-- A stream's events must read back in version order in the log order (transaction_id, position). A transaction
-- whose id is older than the one that wrote the stream's current last event would break that, so it is refused
-- with serialization_failure (40001): retried in a new transaction, it gets a newer id.
CREATE FUNCTION tollgate.append_events(
    p_streams  text[],
    p_expected bigint[],
    p_counts   int[],
    p_types    text[],
    p_data     jsonb[],
    p_metadata jsonb[]
) RETURNS TABLE (item int, appended boolean, stream_version bigint, last_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_offset  int := 0;
    v_current bigint;
    v_count   int;
    v_ok      boolean;
    v_last    bigint;
    v_writer  xid8;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_streams, 1), 0) LOOP
        v_count := p_counts[i];
        v_last := NULL;
        BEGIN
            SELECT coalesce(max(e.version), 0) INTO v_current FROM tollgate.events e WHERE e.stream_id = p_streams[i];
            IF p_expected[i] IS NOT NULL AND p_expected[i] <> v_current THEN
                v_ok := false;
            ELSE
                IF v_current > 0 THEN
                    SELECT e.transaction_id INTO v_writer FROM tollgate.events e
                    WHERE e.stream_id = p_streams[i] AND e.version = v_current;
                    IF v_writer > pg_current_xact_id() THEN
                        RAISE EXCEPTION 'stream % was last written by a newer transaction', p_streams[i]
                            USING ERRCODE = 'serialization_failure',
                                  HINT = 'Retry the append in a new transaction.';
                    END IF;
                END IF;
                WITH inserted AS (
                    INSERT INTO tollgate.events (stream_id, version, type, data, metadata)
                    SELECT p_streams[i], v_current + k, p_types[v_offset + k], p_data[v_offset + k], p_metadata[v_offset + k]
                    FROM generate_series(1, v_count) AS k
                    ORDER BY k
                    RETURNING position
                )
                SELECT max(position) INTO v_last FROM inserted;
                v_current := v_current + v_count;
                v_ok := true;
            END IF;
        EXCEPTION WHEN unique_violation THEN
            -- A concurrent writer committed this version first.
            SELECT coalesce(max(e.version), 0) INTO v_current FROM tollgate.events e WHERE e.stream_id = p_streams[i];
            v_ok := false;
            v_last := NULL;
        END;
        item := i;
        appended := v_ok;
        stream_version := v_current;
        last_position := v_last;
        RETURN NEXT;
        v_offset := v_offset + v_count;
    END LOOP;
END
$$;

-- Where each projection has got to in the log, advanced in the same transaction as the projection's writes.
CREATE TABLE tollgate.projection_checkpoints (
    name           text PRIMARY KEY,
    transaction_id xid8        NOT NULL DEFAULT '0',
    position       bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
