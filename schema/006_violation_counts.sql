-- 006_violation_counts.sql — a row of the denial log counts the denials of
-- one rule and key (same mode, limit and cost) within one second, from
-- at_ms: a key under attack writes a few rows a second, not one per
-- request. Rows written before this migration hold one denial each.

ALTER TABLE violations ADD COLUMN count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1);
