-- Rollups of the raw window datapoints per period (60, 300, 1200, 3600,
-- 14400, 86400 s): for each metric the count, sum, sum of squares, min and
-- max of the per-window values, so average, sum, min, max and variance of
-- any bucket are exact.
CREATE TABLE monitor_rollups (monitor_id TEXT NOT NULL, project_id TEXT NOT NULL, period BIGINT NOT NULL,
                              bucket_ms BIGINT NOT NULL, windows BIGINT NOT NULL, sent BIGINT NOT NULL, received BIGINT NOT NULL,
                              lat_n BIGINT NOT NULL, lat_sum REAL, lat_sumsq REAL, lat_min REAL, lat_max REAL,
                              max_sum REAL, max_sumsq REAL, max_min REAL, max_max REAL,
                              loss_sum REAL NOT NULL, loss_sumsq REAL NOT NULL, loss_min REAL NOT NULL, loss_max REAL NOT NULL,
                              PRIMARY KEY (monitor_id, period, bucket_ms));
CREATE INDEX monitor_rollups_time ON monitor_rollups (period, bucket_ms);
