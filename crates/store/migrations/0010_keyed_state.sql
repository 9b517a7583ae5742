-- A consumer's state, a row per thing it remembers (a rule window, a group, a person's history), so each batch
-- writes what it changed instead of rewriting everything it knows.
CREATE TABLE keyed_state (
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (owner, kind, key)
);
