-- Schema 1: tenants, runs and their events.
--
-- Times are RFC 3339 text in UTC with nine fractional digits, so text order
-- is time order. JSON columns hold text. Identifiers and enum values are
-- text. The same shape maps one to one onto PostgreSQL (timestamptz, jsonb).

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

INSERT INTO tenants (id, name, created_at)
VALUES ('default', 'default', strftime('%Y-%m-%dT%H:%M:%f000000Z', 'now'));

CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    scenario_name TEXT NOT NULL,
    scenario_hash TEXT NOT NULL,
    -- A u64 as decimal text: INTEGER is a signed 64-bit type here and in PostgreSQL.
    seed          TEXT NOT NULL,
    clock_start   TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    transport     TEXT NOT NULL,
    labels        TEXT NOT NULL,
    status        TEXT NOT NULL
        CHECK (status IN ('active', 'completed', 'interrupted', 'failed')),
    ended_at      TEXT,
    -- The store instance writing an active run; NULL once the run is over.
    -- A run whose owner is gone is marked interrupted on the next open.
    owner         TEXT,
    -- Lets events reference (run, tenant) together, so that an event can
    -- never be filed under another tenant's run.
    UNIQUE (id, tenant_id)
);

CREATE INDEX runs_by_tenant_started ON runs (tenant_id, started_at);

CREATE TABLE events (
    run_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq >= 0),
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    direction    TEXT NOT NULL,
    method       TEXT,
    request_id   TEXT,
    virtual_time TEXT NOT NULL,
    wall_time    TEXT NOT NULL,
    payload      TEXT NOT NULL,
    PRIMARY KEY (run_id, seq),
    FOREIGN KEY (run_id, tenant_id) REFERENCES runs (id, tenant_id)
);
