-- Approvers away: while a delegation is in force its delegate decides in the approver's place.
CREATE TABLE delegations (
    principal TEXT PRIMARY KEY,
    delegate TEXT NOT NULL,
    from_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX delegations_by_delegate ON delegations (delegate, until_ms);
