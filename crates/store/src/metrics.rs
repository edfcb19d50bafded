//! Rollups of the raw window datapoints, for the metric APIs.
//!
//! A rollup bucket keeps, per metric, the count, sum, sum of squares, min
//! and max of the per-window values, so CES's `average`, `sum`, `min`,
//! `max` and `variance` filters are exact for any bucket. Buckets are
//! aligned to the period (epoch-based, as CES aligns `from`). Each period
//! has a watermark: everything before it is rolled up, exactly once.

use crate::Result;
use crate::buckets;
use crate::sql::SqlStore;
use async_trait::async_trait;
use domain::{DomainError, ProjectId};
use sqlx::{AssertSqlSafe, Row};

/// Periods (seconds) that are rolled up; 1 is the raw window itself.
pub const ROLLUP_PERIODS: [i64; 6] = [60, 300, 1200, 3600, 14400, 86400];

/// Count, sum, sum of squares, min, max of some per-window values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Agg {
    pub n: i64,
    pub sum: f64,
    pub sumsq: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Agg {
    /// Mean, when there is a value.
    pub fn average(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
    /// Population variance, when there is a value.
    pub fn variance(&self) -> Option<f64> {
        self.average()
            .map(|m| (self.sumsq / self.n as f64 - m * m).max(0.0))
    }
}

/// One rolled-up bucket of one monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub monitor_id: String,
    pub period: i64,
    pub bucket_ms: i64,
    pub windows: i64,
    pub sent: i64,
    pub received: i64,
    /// Per-window average RTT (windows with a reply).
    pub latency: Agg,
    /// Per-window max RTT.
    pub max_latency: Agg,
    /// Per-window loss %.
    pub loss: Agg,
}

/// The time-series side of the store.
#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Rolls up every complete `period_s` bucket that ends at or before
    /// `until_ms` and is past the period's watermark; returns rows written.
    async fn roll_up(&self, period_s: i64, until_ms: i64) -> Result<u64>;
    /// Rollups of a monitor of project `p` with `from_ms <= bucket < to_ms`.
    async fn list_rollups(
        &self,
        p: &ProjectId,
        monitor_id: &str,
        period_s: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Rollup>>;
    /// Deletes rollups of `period_s` older than `before_ms`.
    async fn prune_rollups(&self, period_s: i64, before_ms: i64) -> Result<u64>;
}

fn internal(e: sqlx::Error) -> DomainError {
    DomainError::Internal(format!("database: {e}"))
}

fn agg(row: &sqlx::any::AnyRow, prefix: &str, n: i64) -> Result<Agg> {
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
impl MetricStore for SqlStore {
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
        monitor_id: &str,
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
            monitor_id,
            from_ms,
            to_ms,
        )
        .await?;
        rows.iter()
            .map(|r| {
                let windows: i64 = r.try_get("windows").map_err(internal)?;
                let lat_n: i64 = r.try_get("lat_n").map_err(internal)?;
                Ok(Rollup {
                    monitor_id: r.try_get("monitor_id").map_err(internal)?,
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
        let r = sqlx::query("DELETE FROM monitor_rollups WHERE period = $1 AND bucket_ms < $2")
            .bind(period_s)
            .bind(before_ms)
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected())
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
