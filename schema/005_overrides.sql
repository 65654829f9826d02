-- 005_overrides.sql — per-client exceptions to a rule: the client key exactly
-- as ratekit reports it in check results ("ip:203.0.113.7", "user:42") gets
-- its own limit (and optionally burst and window) until expires_at (epoch
-- ms; NULL: never). burst and window_ms NULL follow the rule.

CREATE TABLE rule_overrides (
    rule_id    TEXT NOT NULL,
    key        TEXT NOT NULL,
    "limit"    INTEGER NOT NULL CHECK ("limit" >= 1),
    burst      INTEGER,
    window_ms  INTEGER,
    expires_at INTEGER,
    note       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (rule_id, key)
) WITHOUT ROWID;

-- A deleted rule takes its overrides with it (a rule created again under the
-- same id starts without any). Updates of a rule keep them.
CREATE TRIGGER rule_overrides_follow_rule AFTER DELETE ON rules
BEGIN
    DELETE FROM rule_overrides WHERE rule_id = OLD.id;
END;
