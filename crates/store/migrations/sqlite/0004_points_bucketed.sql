-- Raw window datapoints keyed (bucket_ms, monitor_id, window_start_ms), where
-- bucket_ms is window_start_ms rounded down to 10 s (store::sql::POINT_BUCKET_MS).
-- New windows land in the newest bucket or two, a few hundred contiguous
-- pages even at 100 000 monitors, instead of one random page per window in a
-- per-monitor index (which cost about a quarter of the whole process's CPU
-- at that scale). Rollups and retention read and delete contiguous bucket
-- ranges; one monitor's points are found with one seek per bucket of the
-- range asked for (a recursive CTE of bucket values joined on the key).
CREATE TABLE monitor_points_bucketed (bucket_ms BIGINT NOT NULL, monitor_id TEXT NOT NULL, project_id TEXT NOT NULL,
                                      window_start_ms BIGINT NOT NULL,
                                      sent BIGINT NOT NULL, received BIGINT NOT NULL, loss_pct REAL NOT NULL,
                                      rtt_min_ms REAL, rtt_avg_ms REAL, rtt_max_ms REAL, jitter_ms REAL,
                                      PRIMARY KEY (bucket_ms, monitor_id, window_start_ms)) WITHOUT ROWID;
INSERT INTO monitor_points_bucketed (bucket_ms, monitor_id, project_id, window_start_ms, sent, received, loss_pct,
                                     rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms)
    SELECT (window_start_ms / 10000) * 10000 - CASE WHEN window_start_ms < 0 AND window_start_ms % 10000 <> 0 THEN 10000 ELSE 0 END,
           monitor_id, project_id, window_start_ms, sent, received, loss_pct,
           rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms FROM monitor_points;
DROP INDEX monitor_points_monitor;
DROP TABLE monitor_points;
ALTER TABLE monitor_points_bucketed RENAME TO monitor_points;
