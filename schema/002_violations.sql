-- 002_violations.sql — the denial log: every request a rule denied, or would
-- have denied in shadow mode. Written in batches by each ratekitd's audit
-- thread (instance names the process); rows older than
-- RATEKIT_VIOLATIONS_RETENTION_DAYS are deleted a little at a time.
-- Times are epoch milliseconds (UTC). Pages are read newest first by id.

CREATE TABLE violations (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms    INTEGER NOT NULL,
    rule     TEXT NOT NULL,
    key      TEXT NOT NULL,
    mode     TEXT NOT NULL CHECK (mode IN ('enforce', 'shadow')),
    "limit"  INTEGER NOT NULL,
    cost     INTEGER NOT NULL,
    instance TEXT NOT NULL
);

CREATE INDEX violations_at ON violations (at_ms);
CREATE INDEX violations_rule ON violations (rule, id);
CREATE INDEX violations_key ON violations (key, id);
