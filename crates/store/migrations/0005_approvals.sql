-- Dual-approval requests and the grants they produce.
CREATE TABLE download_requests (
    id TEXT PRIMARY KEY,
    -- The callback's ce_id or the API's idempotency key: one request per source, however often it arrives.
    source_id TEXT NOT NULL UNIQUE,
    requester TEXT NOT NULL,
    status TEXT NOT NULL,
    file_id TEXT NOT NULL,
    file_name TEXT NOT NULL,
    -- The request's state machine as JSON (crates/approval), slots and decisions included.
    state TEXT NOT NULL,
    -- Bumped by every change; an update names the version it read, so two replicas never both decide.
    version BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    next_deadline_ms BIGINT
);
CREATE INDEX download_requests_by_deadline ON download_requests (status, next_deadline_ms);
CREATE INDEX download_requests_by_requester ON download_requests (requester, created_ms);

CREATE TABLE grants (
    request_id TEXT PRIMARY KEY REFERENCES download_requests (id),
    user_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    granted_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX grants_by_user_file ON grants (user_id, file_id, expires_at_ms);
