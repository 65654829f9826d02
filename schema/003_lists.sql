-- 003_lists.sql — safelist and denylist entries, and temporary bans.
-- value is a CIDR or an address (kind 'cidr'), or a client key exactly as
-- ratekit reports it, e.g. "user:42" (kind 'key'). Times are epoch ms.

CREATE TABLE lists (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    list       TEXT NOT NULL CHECK (list IN ('safelist', 'denylist')),
    value      TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('cidr', 'key')),
    source     TEXT NOT NULL DEFAULT 'list' CHECK (source IN ('list', 'ban')),
    expires_at INTEGER,
    note       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    UNIQUE (list, value)
);
