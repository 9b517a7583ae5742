-- When an alert last changed in the store (created, folded, acknowledged, resolved), by the writer's clock. An
-- alert about an old event still counts as new to readers that follow changes.
ALTER TABLE alerts ADD COLUMN changed_at_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX alerts_by_changed_at ON alerts (changed_at_ms);
