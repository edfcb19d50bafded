-- Raw window datapoints keyed (bucket_ms, monitor_id, window_start_ms), where
-- bucket_ms is window_start_ms rounded down to 10 s (store::sql::POINT_BUCKET_MS):
-- the same layout as SQLite's migration 0004. New windows land in the newest
-- bucket or two instead of on one random page per window in a per-monitor
-- index; one monitor's points are found with one seek per bucket.
CREATE TABLE monitor_points_bucketed (bucket_ms BIGINT NOT NULL, monitor_id TEXT NOT NULL, project_id TEXT NOT NULL,
                                      window_start_ms BIGINT NOT NULL,
                                      sent BIGINT NOT NULL, received BIGINT NOT NULL, loss_pct DOUBLE PRECISION NOT NULL,
                                      rtt_min_ms DOUBLE PRECISION, rtt_avg_ms DOUBLE PRECISION, rtt_max_ms DOUBLE PRECISION,
                                      jitter_ms DOUBLE PRECISION,
                                      PRIMARY KEY (bucket_ms, monitor_id, window_start_ms));
INSERT INTO monitor_points_bucketed (bucket_ms, monitor_id, project_id, window_start_ms, sent, received, loss_pct,
                                     rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms)
    SELECT FLOOR(window_start_ms / 10000.0)::BIGINT * 10000, monitor_id, project_id, window_start_ms, sent, received,
           loss_pct, rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms FROM monitor_points;
DROP TABLE monitor_points;
ALTER TABLE monitor_points_bucketed RENAME TO monitor_points;
