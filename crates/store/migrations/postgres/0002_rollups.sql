-- Rollups of the raw window datapoints per period (60, 300, 1200, 3600,
-- 14400, 86400 s): for each metric the count, sum, sum of squares, min and
-- max of the per-window values, so average, sum, min, max and variance of
-- any bucket are exact.
CREATE TABLE monitor_rollups (monitor_id TEXT NOT NULL, project_id TEXT NOT NULL, period BIGINT NOT NULL,
                              bucket_ms BIGINT NOT NULL, windows BIGINT NOT NULL, sent BIGINT NOT NULL, received BIGINT NOT NULL,
                              lat_n BIGINT NOT NULL, lat_sum DOUBLE PRECISION, lat_sumsq DOUBLE PRECISION, lat_min DOUBLE PRECISION, lat_max DOUBLE PRECISION,
                              max_sum DOUBLE PRECISION, max_sumsq DOUBLE PRECISION, max_min DOUBLE PRECISION, max_max DOUBLE PRECISION,
                              loss_sum DOUBLE PRECISION NOT NULL, loss_sumsq DOUBLE PRECISION NOT NULL, loss_min DOUBLE PRECISION NOT NULL, loss_max DOUBLE PRECISION NOT NULL,
                              PRIMARY KEY (monitor_id, period, bucket_ms));
CREATE INDEX monitor_rollups_time ON monitor_rollups (period, bucket_ms);
