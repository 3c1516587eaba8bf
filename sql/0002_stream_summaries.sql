-- Projection "streams": one row per stream with its version, event count and latest event. Rebuilt from the
-- log by `tollgate projections rebuild streams`; never written by anything but its projector.
CREATE TABLE tollgate.stream_summaries (
    stream_id     text PRIMARY KEY,
    version       bigint      NOT NULL,
    event_count   bigint      NOT NULL,
    first_type    text        NOT NULL,
    last_type     text        NOT NULL,
    last_position bigint      NOT NULL,
    updated_at    timestamptz NOT NULL
);
