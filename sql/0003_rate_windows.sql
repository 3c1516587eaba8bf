-- Rate windows: how much of each limit's counter has been used in each window. A projection of the log: every
-- `ToolCallDecided` event that allowed a call adds its reservations, every `ToolCallCompleted` event that gave
-- them back (the upstream call failed) subtracts them. The gateway writes it in the same transaction as the
-- decision event, so the count and the log never disagree; `tollgate projections rebuild rate_windows` recomputes
-- it from the log.
--
-- A reservation is admitted with one statement that is exact under concurrency, across gateway processes:
--   INSERT ... ON CONFLICT DO UPDATE SET count = count + amount WHERE count + amount <= ceiling RETURNING count
-- (the conflicting row is locked and the WHERE re-checked on its newest version; no row back = not admitted).
CREATE TABLE tollgate.rate_windows (
    server         text    NOT NULL,
    counter        text    NOT NULL,
    scope          text    NOT NULL,
    window_start   bigint  NOT NULL,  -- seconds since the Unix epoch, UTC
    window_seconds integer NOT NULL,
    count          numeric NOT NULL,
    PRIMARY KEY (server, counter, scope, window_start, window_seconds)
);
