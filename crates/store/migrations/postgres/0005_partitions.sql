-- Measurements partitioned by time, so that retention drops whole
-- partitions instead of deleting rows (store::sql::partitions).
--
-- Raw windows: monitor_points PARTITION BY RANGE (bucket_ms). Rollups:
-- monitor_rollups PARTITION BY LIST (period), one monitor_rollups_p<period>
-- per rolled-up period, each PARTITION BY RANGE (bucket_ms), because every
-- level is kept for its own time. The time partitions themselves
-- (<parent>_<first ms>, a fixed width per level) are created ahead of time
-- by the prober's retention job; each parent has a DEFAULT partition that
-- holds what no time partition covers (the data moved here from the old
-- tables, windows far in the past or future), pruned by row deletes. A job
-- that creates a time partition moves the default's rows of its range into
-- it first.
CREATE TABLE monitor_points_parted (bucket_ms BIGINT NOT NULL, monitor_id TEXT NOT NULL, project_id TEXT NOT NULL,
                                    window_start_ms BIGINT NOT NULL,
                                    sent BIGINT NOT NULL, received BIGINT NOT NULL, loss_pct DOUBLE PRECISION NOT NULL,
                                    rtt_min_ms DOUBLE PRECISION, rtt_avg_ms DOUBLE PRECISION, rtt_max_ms DOUBLE PRECISION,
                                    jitter_ms DOUBLE PRECISION,
                                    PRIMARY KEY (bucket_ms, monitor_id, window_start_ms)) PARTITION BY RANGE (bucket_ms);
CREATE TABLE monitor_points_default PARTITION OF monitor_points_parted DEFAULT;
INSERT INTO monitor_points_parted (bucket_ms, monitor_id, project_id, window_start_ms, sent, received, loss_pct, rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms)
    SELECT bucket_ms, monitor_id, project_id, window_start_ms, sent, received, loss_pct, rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms FROM monitor_points;
DROP TABLE monitor_points;
ALTER TABLE monitor_points_parted RENAME TO monitor_points;

CREATE TABLE monitor_rollups_parted (period BIGINT NOT NULL, bucket_ms BIGINT NOT NULL, monitor_id TEXT NOT NULL,
                                   project_id TEXT NOT NULL, windows BIGINT NOT NULL, sent BIGINT NOT NULL, received BIGINT NOT NULL,
                                   lat_n BIGINT NOT NULL, lat_sum DOUBLE PRECISION, lat_sumsq DOUBLE PRECISION, lat_min DOUBLE PRECISION, lat_max DOUBLE PRECISION,
                                   max_sum DOUBLE PRECISION, max_sumsq DOUBLE PRECISION, max_min DOUBLE PRECISION, max_max DOUBLE PRECISION,
                                   loss_sum DOUBLE PRECISION NOT NULL, loss_sumsq DOUBLE PRECISION NOT NULL, loss_min DOUBLE PRECISION NOT NULL, loss_max DOUBLE PRECISION NOT NULL,
                                   PRIMARY KEY (period, bucket_ms, monitor_id)) PARTITION BY LIST (period);
CREATE TABLE monitor_rollups_p60 PARTITION OF monitor_rollups_parted FOR VALUES IN (60) PARTITION BY RANGE (bucket_ms);
CREATE TABLE monitor_rollups_p60_default PARTITION OF monitor_rollups_p60 DEFAULT;
CREATE TABLE monitor_rollups_p300 PARTITION OF monitor_rollups_parted FOR VALUES IN (300) PARTITION BY RANGE (bucket_ms);
CREATE TABLE monitor_rollups_p300_default PARTITION OF monitor_rollups_p300 DEFAULT;
CREATE TABLE monitor_rollups_p1200 PARTITION OF monitor_rollups_parted FOR VALUES IN (1200) PARTITION BY RANGE (bucket_ms);
CREATE TABLE monitor_rollups_p1200_default PARTITION OF monitor_rollups_p1200 DEFAULT;
CREATE TABLE monitor_rollups_p3600 PARTITION OF monitor_rollups_parted FOR VALUES IN (3600) PARTITION BY RANGE (bucket_ms);
CREATE TABLE monitor_rollups_p3600_default PARTITION OF monitor_rollups_p3600 DEFAULT;
CREATE TABLE monitor_rollups_p14400 PARTITION OF monitor_rollups_parted FOR VALUES IN (14400) PARTITION BY RANGE (bucket_ms);
CREATE TABLE monitor_rollups_p14400_default PARTITION OF monitor_rollups_p14400 DEFAULT;
CREATE TABLE monitor_rollups_p86400 PARTITION OF monitor_rollups_parted FOR VALUES IN (86400) PARTITION BY RANGE (bucket_ms);
CREATE TABLE monitor_rollups_p86400_default PARTITION OF monitor_rollups_p86400 DEFAULT;
-- Any other period (none is written today).
CREATE TABLE monitor_rollups_default PARTITION OF monitor_rollups_parted DEFAULT;
INSERT INTO monitor_rollups_parted (period, bucket_ms, monitor_id, project_id, windows, sent, received, lat_n, lat_sum, lat_sumsq, lat_min, lat_max, max_sum, max_sumsq, max_min, max_max, loss_sum, loss_sumsq, loss_min, loss_max)
    SELECT period, bucket_ms, monitor_id, project_id, windows, sent, received, lat_n, lat_sum, lat_sumsq, lat_min, lat_max, max_sum, max_sumsq, max_min, max_max, loss_sum, loss_sumsq, loss_min, loss_max FROM monitor_rollups;
DROP TABLE monitor_rollups;
ALTER TABLE monitor_rollups_parted RENAME TO monitor_rollups;
