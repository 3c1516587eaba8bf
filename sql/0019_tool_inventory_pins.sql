-- Projection "inventory", pinning (docs/inventory.md): each tool's accepted definition beside its current one. The
-- accepted hash is that of the tool's latest ToolDefinitionAccepted, or of a ToolDefinitionObserved with
-- `baseline: true`; `accepted_by` is null for a baseline; `accepted_approval` names the approval request whose
-- approval accepted it. `status` follows from them: `removed`, `new` (nothing accepted), `accepted` (the current hash
-- is the accepted one) or `changed`. The projector writes these columns (the runtime role's grants on the table cover
-- them); `tollgate projections rebuild inventory` replays the log into the same rows.
ALTER TABLE tollgate.tool_inventory
    ADD COLUMN accepted_hash     text,
    ADD COLUMN accepted_by       text,
    ADD COLUMN accepted_at       timestamptz,
    ADD COLUMN accepted_approval text,
    ADD COLUMN status            text GENERATED ALWAYS AS (
        CASE WHEN removed THEN 'removed'
             WHEN accepted_hash IS NULL THEN 'new'
             WHEN accepted_hash = hash THEN 'accepted'
             ELSE 'changed' END) STORED;
