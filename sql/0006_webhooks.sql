-- Webhook deliveries: the outbox. Projection "webhooks" adds one row per (endpoint, approval event) the endpoint wants,
-- with the exact body to send; the dispatcher of each `tollgate serve` claims due rows (a lease, so two gateways never
-- send one attempt twice at once), sends them signed, and records every attempt. `id` is the `webhook-id` header: the
-- same on every retry, so a receiver can drop duplicates. A rebuild keeps what exists (ON CONFLICT DO NOTHING).
CREATE TABLE tollgate.webhook_deliveries (
    id              text        PRIMARY KEY,
    endpoint        text        NOT NULL,
    event_type      text        NOT NULL,
    event_position  bigint      NOT NULL,
    approval_id     uuid,
    body            text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    give_up_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_status     integer,
    last_error      text,
    UNIQUE (endpoint, event_position)
);
CREATE INDEX webhook_deliveries_due ON tollgate.webhook_deliveries (endpoint, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_recent ON tollgate.webhook_deliveries (created_at DESC);

CREATE TABLE tollgate.webhook_attempts (
    delivery_id text             NOT NULL REFERENCES tollgate.webhook_deliveries (id) ON DELETE CASCADE,
    attempt     integer          NOT NULL,
    started_at  timestamptz      NOT NULL,
    status_code integer,
    latency_ms  double precision NOT NULL,
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);
