//! The SQL of raw datapoints, rollups and retention.

use super::{Backend, SqlStore, buckets, get, get_id, get_project_id, internal, partitions};
use crate::measurements::{Agg, Pruned, ROLLUP_PERIODS, Rollup, WindowPoint};
use crate::{MeasurementStore, Result};
use async_trait::async_trait;
use domain::alarm;
use domain::retention::{Level, Retention};
use domain::{MonitorId, ProjectId};
use sqlx::{Acquire, AssertSqlSafe, Row};
use std::sync::atomic::Ordering;

pub(crate) fn agg(row: &sqlx::any::AnyRow, prefix: &str, n: i64) -> Result<Agg> {
    let g = |c: &str| {
        row.try_get::<Option<f64>, _>(format!("{prefix}_{c}").as_str())
            .map_err(internal)
    };
    Ok(Agg {
        n,
        sum: g("sum")?.unwrap_or(0.0),
        sumsq: g("sumsq")?.unwrap_or(0.0),
        min: g("min")?,
        max: g("max")?,
    })
}

#[async_trait]
impl MeasurementStore for SqlStore {
    async fn insert_points(&self, points: &[WindowPoint]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        // In key order: the B-tree is then walked once, page after page,
        // instead of one descent (and, past the page cache, one read) per
        // point.
        let mut sorted: Vec<&WindowPoint> = points.iter().collect();
        sorted.sort_unstable_by(|a, b| {
            (
                buckets::point_bucket(a.window_start_ms),
                &a.monitor_id,
                a.window_start_ms,
            )
                .cmp(&(
                    buckets::point_bucket(b.window_start_ms),
                    &b.monitor_id,
                    b.window_start_ms,
                ))
        });
        let mut tx = self.write.begin().await.map_err(internal)?;
        let sqlite = self.backend == Backend::Sqlite;
        let mut rest = &sorted[..];
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(point_chunk_len(self.backend, rest.len()));
            rest = tail;
            let sql = insert_points_sql(self.backend, chunk.len());
            // Not a cached prepared statement on PostgreSQL: sqlx 0.9's `Any`
            // driver sends a NULL `f64` as a float4 parameter
            // (`AnyArguments::convert_into` swaps the Real and Double null
            // mappings), and PostgreSQL keeps the types of the first
            // execution, so a later batch of the same size with an RTT where
            // the first had none fails with "incorrect binary data format".
            // Re-preparing each batch is cheap (one per probe window) and
            // gives every execution its own types.
            // SQLite has no such problem, and a cached statement saves
            // re-parsing a large INSERT on every batch; chunk sizes are
            // powers of two there, so only a handful of statements is cached.
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(sqlite);
            for pt in chunk {
                q = q
                    .bind(buckets::point_bucket(pt.window_start_ms))
                    .bind(pt.monitor_id.to_string())
                    .bind(pt.project_id.as_str())
                    .bind(pt.window_start_ms)
                    .bind(pt.sent)
                    .bind(pt.received)
                    .bind(pt.loss_pct)
                    .bind(pt.rtt_min_ms)
                    .bind(pt.rtt_avg_ms)
                    .bind(pt.rtt_max_ms)
                    .bind(pt.jitter_ms);
            }
            q.execute(&mut *tx).await.map_err(internal)?;
        }
        // A monitor deleted while its last window waited in the writer's
        // queue must not leave that point behind: after any deletion, drop,
        // in the same transaction, recent points whose monitor is gone (a
        // minute of margin covers a batch written just before the delete).
        let generation = self.deletions.load(Ordering::Acquire);
        if generation != self.guarded.load(Ordering::Acquire) {
            let oldest = points.iter().map(|p| p.window_start_ms).min().unwrap_or(0) - 60_000;
            sqlx::query(
                "DELETE FROM monitor_points WHERE bucket_ms >= $1 AND window_start_ms >= $2 AND NOT EXISTS \
                 (SELECT 1 FROM connection_monitors m WHERE m.id = monitor_points.monitor_id)",
            )
            .bind(buckets::point_bucket(oldest))
            .bind(oldest)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)?;
        self.guarded.store(generation, Ordering::Release);
        Ok(())
    }

    async fn list_points(
        &self,
        p: &ProjectId,
        monitor_id: &MonitorId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<WindowPoint>> {
        let rows = buckets::series(
            &self.read,
            buckets::Table::Points,
            &[
                "monitor_id",
                "project_id",
                "window_start_ms",
                "sent",
                "received",
                "loss_pct",
                "rtt_min_ms",
                "rtt_avg_ms",
                "rtt_max_ms",
                "jitter_ms",
            ],
            p.as_str(),
            &monitor_id.to_string(),
            from_ms,
            to_ms,
        )
        .await?;
        rows.iter().map(window_point_from_row).collect()
    }

    async fn prune_points(&self, before_ms: i64) -> Result<u64> {
        buckets::prune(&self.write, buckets::Table::Points, before_ms).await
    }

    async fn roll_up(&self, period_s: i64, until_ms: i64) -> Result<u64> {
        // Each period is rolled from the one below it (60 s from the raw
        // windows), so its sources are brought up to date first; a source
        // already rolled up to `until_ms` costs one watermark read.
        if let Some(level) = ROLLUP_PERIODS.iter().position(|&p| p == period_s) {
            for &below in &ROLLUP_PERIODS[..level] {
                self.roll_up_level(below, until_ms).await?;
            }
        }
        self.roll_up_level(period_s, until_ms).await
    }

    async fn list_rollups(
        &self,
        p: &ProjectId,
        monitor_id: &MonitorId,
        period_s: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Rollup>> {
        let rows = buckets::series(
            &self.read,
            buckets::Table::Rollups(period_s),
            &[
                "monitor_id",
                "period",
                "bucket_ms",
                "windows",
                "sent",
                "received",
                "lat_n",
                "lat_sum",
                "lat_sumsq",
                "lat_min",
                "lat_max",
                "max_sum",
                "max_sumsq",
                "max_min",
                "max_max",
                "loss_sum",
                "loss_sumsq",
                "loss_min",
                "loss_max",
            ],
            p.as_str(),
            &monitor_id.to_string(),
            from_ms,
            to_ms,
        )
        .await?;
        rows.iter()
            .map(|r| {
                let windows: i64 = r.try_get("windows").map_err(internal)?;
                let lat_n: i64 = r.try_get("lat_n").map_err(internal)?;
                Ok(Rollup {
                    monitor_id: get_id(r, "monitor_id")?,
                    period: r.try_get("period").map_err(internal)?,
                    bucket_ms: r.try_get("bucket_ms").map_err(internal)?,
                    windows,
                    sent: r.try_get("sent").map_err(internal)?,
                    received: r.try_get("received").map_err(internal)?,
                    latency: agg(r, "lat", lat_n)?,
                    max_latency: agg(r, "max", lat_n)?,
                    loss: agg(r, "loss", windows)?,
                })
            })
            .collect()
    }

    async fn prune_rollups(&self, period_s: i64, before_ms: i64) -> Result<u64> {
        buckets::prune(&self.write, buckets::Table::Rollups(period_s), before_ms).await
    }

    async fn apply_retention(
        &self,
        retention: &Retention,
        now_ms: i64,
    ) -> Vec<(Level, Result<Pruned>)> {
        let mut done = Vec::with_capacity(Level::ALL.len());
        let levels: Vec<_> = retention.levels().collect();
        for (i, &(level, keep)) in levels.iter().enumerate() {
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            let by_age = now_ms.saturating_sub(keep_ms);
            let outcome = match levels.get(i + 1) {
                // What the next level has not been rolled up from yet stays,
                // however old (rollups stopped, or a level kept shorter than
                // the next period).
                Some(&(Level::Rollup(next), _)) => match self.watermark(next).await {
                    Ok(Some(rolled)) => Ok(by_age.min(rolled)),
                    Ok(None) => Ok(i64::MIN),
                    Err(e) => Err(e),
                },
                _ => Ok(by_age),
            };
            let pruned = match outcome {
                Ok(i64::MIN) => Ok(Pruned::default()),
                Ok(before) => self.prune_level(level, before).await,
                Err(e) => Err(e),
            };
            done.push((level, pruned));
        }
        done
    }

    async fn prepare_partitions(&self, retention: &Retention, now_ms: i64) -> Result<u64> {
        match self.backend {
            Backend::Sqlite => Ok(0),
            Backend::Postgres => partitions::prepare(&self.write, retention, now_ms).await,
        }
    }
}

/// The raw-window aggregation of the 60 s level: per-window values become
/// count, sum, sum of squares, min and max.
const FROM_POINTS: &str = "SELECT monitor_id, project_id, $1, (window_start_ms / $2) * $2, COUNT(*), \
       SUM(sent), SUM(received), \
       COUNT(rtt_avg_ms), SUM(rtt_avg_ms), SUM(rtt_avg_ms * rtt_avg_ms), MIN(rtt_avg_ms), MAX(rtt_avg_ms), \
       SUM(rtt_max_ms), SUM(rtt_max_ms * rtt_max_ms), MIN(rtt_max_ms), MAX(rtt_max_ms), \
       SUM(loss_pct), SUM(loss_pct * loss_pct), MIN(loss_pct), MAX(loss_pct) \
     FROM monitor_points WHERE bucket_ms >= $5 AND bucket_ms < $4 \
       AND window_start_ms >= $3 AND window_start_ms < $4 \
     GROUP BY monitor_id, project_id, (window_start_ms / $2) * $2";

/// The aggregation of a longer period from the buckets of the period below
/// ($5): counts and sums add up, minima and maxima of minima and maxima.
const FROM_ROLLUPS: &str = "SELECT monitor_id, project_id, $1, (bucket_ms / $2) * $2, SUM(windows), \
       SUM(sent), SUM(received), \
       SUM(lat_n), SUM(lat_sum), SUM(lat_sumsq), MIN(lat_min), MAX(lat_max), \
       SUM(max_sum), SUM(max_sumsq), MIN(max_min), MAX(max_max), \
       SUM(loss_sum), SUM(loss_sumsq), MIN(loss_min), MAX(loss_max) \
     FROM monitor_rollups WHERE period = $5 AND bucket_ms >= $3 AND bucket_ms < $4 \
     GROUP BY monitor_id, project_id, (bucket_ms / $2) * $2";

fn watermark_key(period_s: i64) -> String {
    format!("rollup_watermark_{period_s}")
}

async fn read_watermark(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    period_s: i64,
) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
        .bind(watermark_key(period_s))
        .fetch_optional(&mut **tx)
        .await
        .map_err(internal)?;
    match row {
        Some(r) => Ok(Some(
            r.try_get::<String, _>("value")
                .map_err(internal)?
                .parse::<i64>()
                .unwrap_or(0),
        )),
        None => Ok(None),
    }
}

impl SqlStore {
    /// Removes `level`'s data older than `before_ms`: rows on SQLite; on
    /// PostgreSQL the partitions wholly before it, and rows only below the
    /// time partitions (in the default partition).
    async fn prune_level(&self, level: Level, before_ms: i64) -> Result<Pruned> {
        let table = match level {
            Level::Raw => buckets::Table::Points,
            Level::Rollup(p) => buckets::Table::Rollups(p),
        };
        let (partitions, rows_before) = match self.backend {
            Backend::Sqlite => (0, before_ms),
            Backend::Postgres => {
                let (dropped, lowest) =
                    partitions::drop_before(&self.write, level, before_ms).await?;
                (dropped, lowest.map_or(before_ms, |lo| lo.min(before_ms)))
            }
        };
        let rows = buckets::prune(&self.write, table, rows_before).await?;
        Ok(Pruned { rows, partitions })
    }

    /// How far `period_s` has been rolled up (`None`: not yet).
    async fn watermark(&self, period_s: i64) -> Result<Option<i64>> {
        let mut tx = self.read.begin().await.map_err(internal)?;
        let wm = read_watermark(&mut tx, period_s).await?;
        tx.rollback().await.map_err(internal)?;
        Ok(wm)
    }

    /// Rolls one period up to `until_ms`, from the raw windows (the first
    /// period, or one that is not in [`ROLLUP_PERIODS`]) or from the period
    /// below, never past what that period has rolled up.
    async fn roll_up_level(&self, period_s: i64, until_ms: i64) -> Result<u64> {
        let p_ms = period_s * 1000;
        let mut until = until_ms.div_euclid(p_ms) * p_ms;
        let source = ROLLUP_PERIODS
            .iter()
            .position(|&p| p == period_s)
            .filter(|&level| level > 0)
            .map(|level| ROLLUP_PERIODS[level - 1]);
        let mut tx = self.write.begin().await.map_err(internal)?;
        if let Some(src) = source {
            match read_watermark(&mut tx, src).await? {
                Some(src_wm) => until = until.min(src_wm.div_euclid(p_ms) * p_ms),
                None => {
                    tx.rollback().await.map_err(internal)?;
                    return Ok(0);
                }
            }
        }
        let from = match read_watermark(&mut tx, period_s).await? {
            Some(wm) => wm,
            None => {
                let earliest = match source {
                    None => sqlx::query("SELECT MIN(bucket_ms) AS m FROM monitor_points")
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(internal)?,
                    Some(src) => sqlx::query(
                        "SELECT MIN(bucket_ms) AS m FROM monitor_rollups WHERE period = $1",
                    )
                    .bind(src)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(internal)?,
                };
                match earliest.try_get::<Option<i64>, _>("m").map_err(internal)? {
                    Some(m) => m.div_euclid(p_ms) * p_ms,
                    None => until,
                }
            }
        };
        if from >= until {
            tx.rollback().await.map_err(internal)?;
            return Ok(0);
        }
        let sql = format!(
            "INSERT INTO monitor_rollups (monitor_id, project_id, period, bucket_ms, windows, sent, received, \
               lat_n, lat_sum, lat_sumsq, lat_min, lat_max, max_sum, max_sumsq, max_min, max_max, \
               loss_sum, loss_sumsq, loss_min, loss_max) {} ON CONFLICT DO NOTHING",
            if source.is_some() {
                FROM_ROLLUPS
            } else {
                FROM_POINTS
            }
        );
        // Assembled from the two constant SELECTs above; no input in it.
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(period_s)
            .bind(p_ms)
            .bind(from)
            .bind(until);
        q = match source {
            Some(src) => q.bind(src),
            None => q.bind(buckets::point_bucket(from)),
        };
        let r = q.execute(&mut *tx).await.map_err(internal)?;
        if alarm::PERIODS.contains(&period_s) {
            // The rules of this period see each bucket once, as it is
            // completed, in the same transaction (a savepoint: a failed
            // evaluation is logged and does not hold the rollups back).
            let mut sp = tx.begin().await.map_err(internal)?;
            let pg = self.backend == Backend::Postgres;
            match super::alarms::evaluate_rollups(&mut sp, period_s, from, until, self.now_us(), pg)
                .await
            {
                Ok(events) => {
                    sp.commit().await.map_err(internal)?;
                    for e in events.iter().filter_map(|e| e.transition.map(|t| (e, t))) {
                        let (e, t) = e;
                        tracing::info!(
                            alarm = %e.rule.alarm_id,
                            monitor = ?e.monitor_id,
                            period = period_s,
                            from = t.from.as_str(),
                            to = t.to.as_str(),
                            value = ?t.value,
                            "alarm state changed"
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, period = period_s, "cannot evaluate alarm rules");
                    sp.rollback().await.map_err(internal)?;
                }
            }
        }
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(watermark_key(period_s))
        .bind(until.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(r.rows_affected())
    }
}

/// Columns of a datapoint row.
const POINT_COLUMNS: usize = 11;
/// Rows per multi-row datapoint INSERT on SQLite (at most; 11 parameters
/// each, well under SQLite's 32 766 parameter limit).
const SQLITE_POINT_CHUNK: usize = 256;

/// Rows per multi-row datapoint INSERT on PostgreSQL.
const POSTGRES_POINT_CHUNK: usize = 64;

/// How many of `remaining` points the next INSERT takes. On SQLite the
/// statements are cached, so the sizes are powers of two (a full chunk, then
/// the binary decomposition of the rest): at most nine statement shapes.
fn point_chunk_len(backend: Backend, remaining: usize) -> usize {
    match backend {
        Backend::Sqlite if remaining >= SQLITE_POINT_CHUNK => SQLITE_POINT_CHUNK,
        Backend::Sqlite => 1 << remaining.ilog2(),
        Backend::Postgres => remaining.min(POSTGRES_POINT_CHUNK),
    }
}

/// The multi-row INSERT of `rows` datapoints. SQLite gets anonymous `?`
/// parameters: with numbered ones, binding costs quadratic time (sqlx looks
/// every parameter's name up, and SQLite finds a name by scanning a list of
/// all of them), which dominated the writer's CPU at 640 parameters.
fn insert_points_sql(backend: Backend, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(200 + rows * 60);
    // On SQLite `OR IGNORE` rather than `ON CONFLICT DO NOTHING`: the same
    // for the primary key (the only conflict a point can have; no column it
    // fills NOT NULL is ever NULL), but a multi-row INSERT that may abort
    // on a NOT NULL violation needs a statement journal, which copied every
    // page the INSERT touched.
    sql.push_str(match backend {
        Backend::Sqlite => "INSERT OR IGNORE",
        Backend::Postgres => "INSERT",
    });
    sql.push_str(
        " INTO monitor_points (bucket_ms, monitor_id, project_id, window_start_ms, sent, received, loss_pct, \
         rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        match backend {
            Backend::Sqlite => sql.push_str("(?,?,?,?,?,?,?,?,?,?,?)"),
            Backend::Postgres => {
                sql.push('(');
                for c in 1..=POINT_COLUMNS {
                    if c > 1 {
                        sql.push(',');
                    }
                    let _ = write!(sql, "${}", i * POINT_COLUMNS + c);
                }
                sql.push(')');
            }
        }
    }
    if backend == Backend::Postgres {
        sql.push_str(" ON CONFLICT DO NOTHING");
    }
    sql
}

/// A raw datapoint from a row with the datapoint columns (also the
/// overview's newest windows).
pub(crate) fn window_point_from_row(r: &sqlx::any::AnyRow) -> Result<WindowPoint> {
    Ok(WindowPoint {
        monitor_id: get_id(r, "monitor_id")?,
        project_id: get_project_id(r, "project_id")?,
        window_start_ms: get(r, "window_start_ms")?,
        sent: get(r, "sent")?,
        received: get(r, "received")?,
        loss_pct: get(r, "loss_pct")?,
        rtt_min_ms: get(r, "rtt_min_ms")?,
        rtt_avg_ms: get(r, "rtt_avg_ms")?,
        rtt_max_ms: get(r, "rtt_max_ms")?,
        jitter_ms: get(r, "jitter_ms")?,
    })
}
