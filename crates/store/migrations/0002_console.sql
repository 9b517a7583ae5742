-- The security console: server-side sessions, sign-in links and API tokens (only their SHA-256 is kept, so a
-- copy of the database signs nobody in), failed sign-ins for rate limiting, and the indexes its live feed polls.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at_ms);

CREATE TABLE console_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    used_at_ms BIGINT
);
CREATE INDEX console_tokens_by_expiry ON console_tokens (expires_at_ms);

CREATE TABLE console_login_failures (
    user_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX console_login_failures_by_user ON console_login_failures (user_id, at_ms);
CREATE INDEX console_login_failures_by_time ON console_login_failures (at_ms);

CREATE INDEX alerts_by_acknowledged ON alerts (acknowledged_at_ms);
CREATE INDEX alerts_by_resolved ON alerts (resolved_at_ms);
CREATE INDEX alerts_by_status ON alerts (status, first_seen_ms);
