-- 004_tokens.sql — API tokens of the admin plane. A token reads
-- "rk_<id>_<secret>": id is public (the lookup key), the secret is shown
-- once at creation and stored only as hash = SHA-256(salt || secret), both
-- lower-case hex. Times are epoch ms; expires_at NULL means never.

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    salt         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    expires_at   INTEGER,
    last_used_at INTEGER
) WITHOUT ROWID;
