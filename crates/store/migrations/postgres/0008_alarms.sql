-- Cloud Eye alarm rules (CES v1) and their history. A rule keeps its wire
-- record (with alarm_state and update_time) in `body` and the evaluator's
-- memory in `eval`, with the columns that queries filter on beside them:
-- the watched connection (no foreign key: a rule outlives its connection,
-- as in CES, and then has no data), its period, whether it is enabled, its
-- state, and since when it watches (creation or condition change) and its
-- newest data, for the no-data check.
CREATE TABLE alarms (id TEXT PRIMARY KEY NOT NULL, project_id TEXT NOT NULL, created_us BIGINT NOT NULL,
                     connection_id TEXT NOT NULL, period BIGINT NOT NULL, enabled BIGINT NOT NULL,
                     state TEXT NOT NULL, watch_ms BIGINT NOT NULL, last_data_ms BIGINT,
                     body TEXT NOT NULL, eval TEXT NOT NULL);
CREATE INDEX alarms_project ON alarms (project_id, created_us);
CREATE INDEX alarms_connection ON alarms (connection_id);

-- One row per state change; kept when the rule is deleted.
CREATE TABLE alarm_history (seq BIGSERIAL PRIMARY KEY, project_id TEXT NOT NULL,
                            alarm_id TEXT NOT NULL, alarm_name TEXT NOT NULL, alarm_level BIGINT NOT NULL,
                            status TEXT NOT NULL, namespace TEXT NOT NULL, trigger_ms BIGINT NOT NULL,
                            body TEXT NOT NULL);
CREATE INDEX alarm_history_project ON alarm_history (project_id, trigger_ms);
