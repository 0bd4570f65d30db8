-- Schema 4: access tokens and approvals.
--
-- A token is stored as the SHA-256 (lowercase hex) of its bearer value,
-- never the value itself. Counts are INTEGER: the store refuses values past
-- 2^63 - 1 rather than wrap them. Tokens are never deleted, only revoked, so
-- an id or a hash is never reused.

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    scenario   TEXT,
    run_id     TEXT,
    scopes     TEXT NOT NULL,
    -- NULL: no limit on the number of calls.
    budget     INTEGER CHECK (budget IS NULL OR budget >= 0),
    calls_used INTEGER NOT NULL CHECK (calls_used >= 0),
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);

CREATE INDEX tokens_by_tenant_created ON tokens (tenant_id, created_at);

-- A call held for a person's decision. Its arguments and message are
-- redacted before they are written, like events. `decided_at` is when the
-- approval left `pending`, by a decision or by expiring.

CREATE TABLE approvals (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    run_id            TEXT NOT NULL,
    tool              TEXT NOT NULL,
    args_hash         TEXT NOT NULL,
    arguments         TEXT NOT NULL,
    rule              TEXT NOT NULL,
    message           TEXT NOT NULL,
    requested_by      TEXT NOT NULL,
    requested_at      TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    status            TEXT NOT NULL
        CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    decided_by        TEXT,
    decided_args_hash TEXT,
    decided_at        TEXT,
    reason            TEXT
);

CREATE INDEX approvals_by_tenant_requested ON approvals (tenant_id, requested_at);
