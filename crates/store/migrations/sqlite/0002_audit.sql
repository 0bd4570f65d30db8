-- Schema 2: the audit trail. One chain per tenant: each entry carries the
-- SHA-256 (hex) of the previous entry's hash and its own content, so an
-- entry changed or removed after the fact breaks every hash after it.

CREATE TABLE audit (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    seq       INTEGER NOT NULL CHECK (seq >= 1),
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
