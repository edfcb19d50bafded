-- Raw window datapoints, stored in time order: the table's key starts with
-- the window's start, so a batch of new windows lands at the end of the
-- table instead of on one page per monitor, and rollups and retention read
-- and delete contiguous ranges. Per-monitor reads go through the index on
-- (monitor_id, window_start_ms).
CREATE TABLE monitor_points_by_time (monitor_id TEXT NOT NULL, project_id TEXT NOT NULL, window_start_ms BIGINT NOT NULL,
                                     sent BIGINT NOT NULL, received BIGINT NOT NULL, loss_pct REAL NOT NULL,
                                     rtt_min_ms REAL, rtt_avg_ms REAL, rtt_max_ms REAL, jitter_ms REAL,
                                     PRIMARY KEY (window_start_ms, monitor_id)) WITHOUT ROWID;
INSERT INTO monitor_points_by_time (monitor_id, project_id, window_start_ms, sent, received, loss_pct,
                                    rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms)
    SELECT monitor_id, project_id, window_start_ms, sent, received, loss_pct,
           rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms FROM monitor_points;
DROP TABLE monitor_points;
ALTER TABLE monitor_points_by_time RENAME TO monitor_points;
CREATE INDEX monitor_points_monitor ON monitor_points (monitor_id, window_start_ms);
