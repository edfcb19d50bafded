-- The time of each rule's newest data, apart from the rule: a healthy
-- link's rule changes nothing but this, and the evaluation writes it for
-- every rule at once every few minutes (a sweep of this narrow table in key
-- order) instead of rewriting each ~1 KB rule row on its own schedule. One
-- row per rule, made and removed with it; NULL until its first data. The
-- no-data check reads the rules that are due through the time index.
CREATE TABLE alarm_data (id TEXT PRIMARY KEY NOT NULL, last_data_ms BIGINT);
INSERT INTO alarm_data (id, last_data_ms) SELECT id, last_data_ms FROM alarms;
CREATE INDEX alarm_data_time ON alarm_data (last_data_ms);
-- How many rules are enabled (the metrics read it every few seconds)
-- without reading every rule.
CREATE INDEX alarms_enabled ON alarms (enabled);
