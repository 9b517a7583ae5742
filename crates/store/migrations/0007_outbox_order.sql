-- The order items were queued in within one transaction: items of the same millisecond keep it when published.
ALTER TABLE outbox ADD COLUMN ord BIGINT NOT NULL DEFAULT 0;
