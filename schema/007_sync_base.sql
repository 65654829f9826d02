-- 007_sync_base.sql — the ruleset document this instance last had in common
-- with Redis (published or applied): the base a merge tells this instance's
-- changes by. Kept across a restart, so that a change made while Redis was
-- away is merged with what other instances changed meanwhile, not published
-- over it. One row, written only before a change of this instance goes out.

CREATE TABLE sync_base (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL
);
