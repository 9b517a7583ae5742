-- Replicas of a consumer share its state: every row carries the version its last writer gave it, and a writer
-- changes a row only if it is still the version that writer read, so no window is counted from a stale copy.
ALTER TABLE keyed_state ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
-- What replicas wrote since a time, read by each of them between batches.
CREATE INDEX keyed_state_updated ON keyed_state (owner, updated_ms);
