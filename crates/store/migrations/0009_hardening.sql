-- How each console session was started, so a decision taken in it records the way in.
ALTER TABLE console_sessions ADD COLUMN via TEXT NOT NULL DEFAULT 'password';

-- Who each pending request waits on: an inbox is one indexed query, paged in SQL, however many other requests
-- are open.
CREATE TABLE request_waiting (
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (request_id, user_id)
);
CREATE INDEX request_waiting_by_user ON request_waiting (user_id, created_ms);

-- What dingguard has itself seen of a file (in download events), which a requester's description cannot
-- override. Empty strings stand for "not stated".
CREATE TABLE file_facts (
    file_id TEXT NOT NULL,
    name TEXT NOT NULL,
    space TEXT NOT NULL,
    source TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (file_id, name, space)
);

-- The file facts (name and space, as JSON) a grant was decided on: a download is covered only when its own
-- facts match them.
ALTER TABLE grants ADD COLUMN facts TEXT NOT NULL DEFAULT '[]';

-- Sources used to be the callers' own idempotency keys, which anyone could claim. They move to a namespace no
-- caller can produce; new ones are `api:<caller>:<key>`, `cb:<ce_id>` or `oa:<instance>`.
UPDATE download_requests SET source_id = 'legacy:' || source_id WHERE source_id NOT LIKE 'oa:%' AND source_id <> id;

-- Failed sign-ins by what they were against (a user id, a client address, a device, everything), for
-- progressive back-off that no stranger can turn into a lock-out.
CREATE TABLE login_failures (
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX login_failures_by_subject ON login_failures (scope, subject, at_ms);
CREATE INDEX login_failures_by_time ON login_failures (at_ms);

-- Browsers that signed a user in before (by hash): their sign-ins are not held back by failures from elsewhere.
CREATE TABLE console_devices (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX console_devices_by_expiry ON console_devices (expires_at_ms);

-- Replaced by login_failures.
DROP TABLE console_login_failures;
