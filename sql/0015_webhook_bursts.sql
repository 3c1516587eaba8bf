-- Webhook bursts (issue 20): one agent's approval requests coalesced per endpoint. The first request of an agent is
-- queued at once and opens a window of the endpoint's `coalesce` seconds (`window_ends_at`); the requests that follow
-- within it are added to one burst delivery (`coalesced`: their approval ids), due when the window ends, whose body is
-- written again with each one until its first attempt (never after: the same `webhook-id` always has one body).
-- `agent` is NULL on deliveries queued before this migration and on decisions and expiries.
ALTER TABLE tollgate.webhook_deliveries
    ADD COLUMN agent          text,
    ADD COLUMN window_ends_at timestamptz,
    ADD COLUMN coalesced      uuid[];

CREATE INDEX webhook_deliveries_by_agent ON tollgate.webhook_deliveries (endpoint, agent, window_ends_at DESC, event_position DESC)
    WHERE agent IS NOT NULL;
