-- 001_init.sql — rules, their history, and the global ruleset version.
-- Times are epoch milliseconds (UTC). A rule's body is its canonical JSON
-- without version and timestamps, which live in their own columns.

CREATE TABLE rules (
    id         TEXT PRIMARY KEY NOT NULL,
    body       TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per change of a rule, kept after the rule is deleted so that it
-- can be restored. before/after are the stored rule JSON (NULL when absent).
CREATE TABLE rule_history (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id         TEXT NOT NULL,
    version         INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    at              INTEGER NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete', 'restore')),
    before          TEXT,
    after           TEXT,
    ruleset_version INTEGER NOT NULL,
    UNIQUE (rule_id, version)
);

-- Small named values: ruleset_version is bumped by every change.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('ruleset_version', 0);
