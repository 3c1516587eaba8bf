-- The seal: a SHA-256 hash chain over the log in global order (transaction id, position), one row per event, written
-- by the projector (projection "seal") as events become readable. `chain` = SHA-256(previous chain || SHA-256(the
-- event's canonical bytes)), lowercase hex; see Sources/TollgateServer/Audit/EventSeal.swift. `tollgate audit verify`
-- recomputes it and names the first event that was changed, removed or inserted. Never rebuilt.
CREATE TABLE tollgate.event_seals (
    transaction_id xid8   NOT NULL,
    position       bigint NOT NULL,
    chain          text   NOT NULL CHECK (chain ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (transaction_id, position)
);
