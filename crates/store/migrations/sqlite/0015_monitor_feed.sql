-- PostgreSQL's migration 0015 adds the monitor change feed (LISTEN/NOTIFY)
-- for several nodes. SQLite has one node, which hears of changes through
-- its own API; the schema is unchanged (numbered alike on both engines).
SELECT 1;
