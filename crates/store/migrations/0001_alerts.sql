-- Alerts and everything that makes their effects exactly-once. Portable SQL: it runs unchanged on SQLite and
-- PostgreSQL.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    dedup_key TEXT,
    message TEXT NOT NULL,
    pdpa TEXT NOT NULL,
    corp_id TEXT,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    dedup_until_ms BIGINT NOT NULL,
    event_count BIGINT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at_ms BIGINT,
    resolved_by TEXT,
    resolved_at_ms BIGINT
);
CREATE INDEX alerts_by_dedup ON alerts (rule, dedup_key, status);
CREATE INDEX alerts_by_last_seen ON alerts (last_seen_ms);

CREATE TABLE alert_events (
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    ce_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_at_ms BIGINT NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (alert_id, ce_id)
);

CREATE TABLE processed_events (
    consumer TEXT NOT NULL,
    ce_id TEXT NOT NULL,
    processed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (consumer, ce_id)
);

CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    rule TEXT,
    dedup_key TEXT,
    creator TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    matched_count BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE suppressions (
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    count BIGINT NOT NULL,
    last_at_ms BIGINT NOT NULL,
    PRIMARY KEY (rule, kind, name)
);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    delivered_at_ms BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_by_due ON outbox (channel, delivered_at_ms, next_attempt_ms);

CREATE TABLE engine_state (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
