-- Projection "approvals": one row per approval request, the fold of its stream `approval-<id>` (`state` holds the
-- folded value as JSON; the other columns are copies of it for filtering). Written in the same transaction as each
-- approval event, so a held call and a reviewer always see the current state, and by the projector, which skips
-- events a row already holds (`version`); `tollgate projections rebuild approvals` recomputes it from the log.
CREATE TABLE tollgate.approvals (
    approval_id    uuid        PRIMARY KEY,
    version        bigint      NOT NULL,  -- events of the stream folded into this row
    status         text        NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    consumed       boolean     NOT NULL,
    agent          text        NOT NULL,
    server         text        NOT NULL,
    tool           text        NOT NULL,
    arguments_hash text        NOT NULL,
    policy_hash    text        NOT NULL,
    requested_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    state          jsonb       NOT NULL
);

-- Listing newest first, by status; finding an identical call's request; the expiry timer.
CREATE INDEX approvals_by_status ON tollgate.approvals (status, requested_at DESC, approval_id);
CREATE INDEX approvals_by_requested ON tollgate.approvals (requested_at DESC, approval_id);
CREATE INDEX approvals_by_fingerprint ON tollgate.approvals (agent, server, tool, arguments_hash, policy_hash);
CREATE INDEX approvals_pending_expiry ON tollgate.approvals (expires_at) WHERE status = 'pending';
