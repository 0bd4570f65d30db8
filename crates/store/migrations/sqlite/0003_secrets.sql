-- Schema 3: the vault. Secret values are stored sealed (XChaCha20-Poly1305
-- under the master key, which is never stored here); the name, tenant and
-- key id are in the clear so secrets can be listed and rotated.

CREATE TABLE secrets (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
