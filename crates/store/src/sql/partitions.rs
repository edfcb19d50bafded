//! Time partitions of the measurement tables on PostgreSQL (migration
//! `postgres/0005_partitions`): retention drops whole partitions instead of
//! deleting rows.
//!
//! Every level has partitions of a fixed width ([`width_ms`]), aligned to
//! the epoch, named `<parent>_<first ms>` (`monitor_points_1764633600000`,
//! `monitor_rollups_p300_1764633600000`): the width never depends on the
//! configured retention, so changing it never makes two partitions overlap.
//! [`prepare`] creates the partition a level is being written to, the one
//! before it (late windows, the rollup of the period just ended) and the
//! next one, ahead of time; a partition is dropped once all of it is older
//! than the level's age. A level is therefore kept at least its age and at
//! most one width more. What the time partitions do not cover lands in
//! each parent's DEFAULT partition and is pruned by row deletes, exactly;
//! creating a partition moves the default's rows of its range into it
//! first (the rows moved over from the unpartitioned tables, or a batch
//! written before the first partition was made).

use super::{get, internal};
use crate::Result;
use domain::retention::{Level, Retention};
use sqlx::AssertSqlSafe;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The width of `level`'s partitions: about a tenth of Cloud Eye's
/// retention of the level (raw and 60 s: 6 h of 2 days).
pub(crate) fn width_ms(level: Level) -> i64 {
    match level {
        Level::Raw | Level::Rollup(60) => 6 * HOUR_MS,
        Level::Rollup(300) => DAY_MS,
        Level::Rollup(1200) => 2 * DAY_MS,
        Level::Rollup(3600) => 10 * DAY_MS,
        Level::Rollup(_) => 30 * DAY_MS,
    }
}

/// The partitioned table of `level` (its time partitions' parent).
fn parent(level: Level) -> String {
    match level {
        Level::Raw => "monitor_points".to_string(),
        Level::Rollup(p) => format!("monitor_rollups_p{p}"),
    }
}

fn partition(level: Level, lo: i64) -> String {
    format!("{}_{lo}", parent(level))
}

/// The first millisecond of each time partition of `level`, in order.
pub(crate) async fn list(pool: &sqlx::AnyPool, level: Level) -> Result<Vec<i64>> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS name FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = $1",
    )
    .bind(parent(level))
    .fetch_all(pool)
    .await
    .map_err(internal)?;
    let prefix = format!("{}_", parent(level));
    let mut los = Vec::with_capacity(rows.len());
    for r in &rows {
        let name: String = get(r, "name")?;
        // The default partition's suffix is not a number.
        if let Some(lo) = name
            .strip_prefix(&prefix)
            .and_then(|s| s.parse::<i64>().ok())
        {
            los.push(lo);
        }
    }
    los.sort_unstable();
    Ok(los)
}

/// Creates, for every level, the partitions about to be written (see the
/// module doc) that are not there yet and not already past the level's
/// age; returns how many it created.
pub(crate) async fn prepare(
    pool: &sqlx::AnyPool,
    retention: &Retention,
    now_ms: i64,
) -> Result<u64> {
    let mut created = 0;
    for (level, keep) in retention.levels() {
        let w = width_ms(level);
        let period_ms = match level {
            Level::Raw => 0,
            Level::Rollup(p) => p * 1000,
        };
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let expired = now_ms.saturating_sub(keep_ms);
        let have = list(pool, level).await?;
        let first = (now_ms - period_ms - HOUR_MS).div_euclid(w) * w;
        let last = now_ms.div_euclid(w) * w + w;
        let mut lo = first;
        while lo <= last {
            if lo + w > expired && !have.contains(&lo) {
                create(pool, level, lo, w).await?;
                created += 1;
            }
            lo += w;
        }
    }
    Ok(created)
}

/// Creates the partition `[lo, lo + w)` of `level`, with the rows of that
/// range its parent's default partition holds, in one transaction.
async fn create(pool: &sqlx::AnyPool, level: Level, lo: i64, w: i64) -> Result<()> {
    let (parent, name) = (parent(level), partition(level, lo));
    let mut tx = pool.begin().await.map_err(internal)?;
    // One creator at a time (several nodes may share the database).
    sqlx::query("SELECT pg_advisory_xact_lock(727001) AS l")
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
    let exists = sqlx::query("SELECT COUNT(*) AS n FROM pg_class WHERE relname = $1")
        .bind(&name)
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
    if get::<i64>(&exists, "n")? > 0 {
        tx.rollback().await.map_err(internal)?;
        return Ok(());
    }
    // Assembled from table names of our own and numbers; no input in them.
    // The default partition is locked against writes first: a row of the
    // range written to it after the move would make the ATTACH fail.
    for sql in [
        format!("LOCK TABLE \"{parent}_default\" IN SHARE ROW EXCLUSIVE MODE"),
        format!("CREATE TABLE \"{name}\" (LIKE \"{parent}\" INCLUDING DEFAULTS)"),
        format!(
            "WITH moved AS (DELETE FROM \"{parent}_default\" WHERE bucket_ms >= {lo} \
             AND bucket_ms < {hi} RETURNING *) INSERT INTO \"{name}\" SELECT * FROM moved",
            hi = lo + w
        ),
        format!(
            "ALTER TABLE \"{parent}\" ATTACH PARTITION \"{name}\" FOR VALUES FROM ({lo}) TO ({hi})",
            hi = lo + w
        ),
    ] {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
    }
    tx.commit().await.map_err(internal)
}

/// Drops the partitions of `level` wholly before `before_ms`; returns how
/// many, and the first millisecond still covered by a time partition (rows
/// below it are in the default partition).
pub(crate) async fn drop_before(
    pool: &sqlx::AnyPool,
    level: Level,
    before_ms: i64,
) -> Result<(u64, Option<i64>)> {
    let w = width_ms(level);
    let mut dropped = 0;
    let mut lowest = None;
    for lo in list(pool, level).await? {
        if lo.saturating_add(w) <= before_ms {
            // Assembled from a table name of our own.
            sqlx::query(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS \"{}\"",
                partition(level, lo)
            )))
            .execute(pool)
            .await
            .map_err(internal)?;
            dropped += 1;
        } else if lowest.is_none() {
            lowest = Some(lo);
        }
    }
    Ok((dropped, lowest))
}
