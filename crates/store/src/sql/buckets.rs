//! Time-major keys for the measurement tables.
//!
//! Raw datapoints are keyed `(bucket_ms, monitor_id, window_start_ms)` with
//! 10 s buckets, rollups `(period, bucket_ms, monitor_id)`: what the prober
//! writes lands at the end of the key (the newest bucket or two) instead of
//! on one random page per monitor, and retention and rollups work on
//! contiguous ranges. One monitor's rows are found with one seek per bucket
//! of the range asked for: [`cte`] generates the bucket values and the
//! query joins them on the key.

use super::{get, internal};
use crate::Result;
use sqlx::AnyConnection;

/// Width of the raw datapoints' time buckets (migrations
/// `sqlite/0004_points_bucketed`, `postgres/0003_points_bucketed`).
pub(crate) const POINT_BUCKET_MS: i64 = 10_000;

/// `ms` rounded down to a multiple of `step_ms` (saturating at `i64::MIN`,
/// a bound rather than a time).
pub(crate) fn floor(ms: i64, step_ms: i64) -> i64 {
    ms.saturating_sub(ms.rem_euclid(step_ms))
}

/// The raw-datapoint bucket of a window that starts at `ms`.
pub(crate) fn point_bucket(ms: i64) -> i64 {
    floor(ms, POINT_BUCKET_MS)
}

/// `WITH` clause of the buckets `$1, $1 + step, ..., <= $2` as table
/// `b(x)`. The step is a number, formatted in (no input reaches the SQL).
pub(crate) fn cte(step_ms: i64) -> String {
    format!(
        "WITH RECURSIVE b(x) AS (SELECT CAST($1 AS BIGINT) UNION ALL \
         SELECT x + {step_ms} FROM b WHERE x + {step_ms} <= $2)"
    )
}

/// Which bucketed rows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Table {
    /// Raw datapoints.
    Points,
    /// Rollups of one period (s).
    Rollups(i64),
}

impl Table {
    /// The bucket width; `None` for a period no bucket can have (not
    /// positive, or too long for milliseconds in an `i64`).
    fn step_ms(self) -> Option<i64> {
        match self {
            Table::Points => Some(POINT_BUCKET_MS),
            Table::Rollups(period_s) if period_s > 0 => period_s.checked_mul(1000),
            Table::Rollups(_) => None,
        }
    }
}

/// Stored buckets `lo..=hi`, `step` apart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BucketRange {
    lo: i64,
    hi: i64,
    step: i64,
}

/// The buckets of `table` that can hold rows in `from_ms..to_ms`: that
/// range clamped to the oldest and newest bucket stored, or `None` when no
/// stored bucket can.
pub(crate) async fn span(
    conn: &mut AnyConnection,
    table: Table,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<BucketRange>> {
    let Some(step) = table.step_ms() else {
        return Ok(None);
    };
    if from_ms >= to_ms {
        return Ok(None);
    }
    // Two subqueries, each answered from one end of the key.
    let q = match table {
        Table::Points => sqlx::query(
            "SELECT (SELECT MIN(bucket_ms) FROM monitor_points) AS lo, \
             (SELECT MAX(bucket_ms) FROM monitor_points) AS hi",
        ),
        Table::Rollups(period_s) => sqlx::query(
            "SELECT (SELECT MIN(bucket_ms) FROM monitor_rollups WHERE period = $1) AS lo, \
             (SELECT MAX(bucket_ms) FROM monitor_rollups WHERE period = $1) AS hi",
        )
        .bind(period_s),
    };
    let row = q.fetch_one(&mut *conn).await.map_err(internal)?;
    let (Some(lo), Some(hi)) = (
        get::<Option<i64>>(&row, "lo")?,
        get::<Option<i64>>(&row, "hi")?,
    ) else {
        return Ok(None);
    };
    let lo = lo.max(floor(from_ms, step));
    let hi = hi.min(floor(to_ms - 1, step));
    Ok((lo <= hi).then_some(BucketRange { lo, hi, step }))
}

/// One monitor's rows of `table` in `from_ms..to_ms` (by window start for
/// points, by bucket for rollups), oldest first: one key lookup per bucket.
/// `columns` are column names, each selected from the table.
pub(crate) async fn series(
    pool: &sqlx::AnyPool,
    table: Table,
    columns: &[&str],
    project_id: &str,
    monitor_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut conn = pool.acquire().await.map_err(internal)?;
    let Some(span) = span(&mut conn, table, from_ms, to_ms).await? else {
        return Ok(Vec::new());
    };
    let (name, period, time) = match table {
        Table::Points => ("monitor_points", String::new(), "window_start_ms"),
        Table::Rollups(period_s) => (
            "monitor_rollups",
            format!("t.period = {period_s} AND "),
            "bucket_ms",
        ),
    };
    let columns: Vec<String> = columns.iter().map(|c| format!("t.{c}")).collect();
    // The CTE drives the join: one seek per bucket.
    let sql = format!(
        "{} SELECT {} FROM b CROSS JOIN {name} t WHERE {period}t.bucket_ms = b.x \
         AND t.monitor_id = $3 AND t.project_id = $4 AND t.{time} >= $5 AND t.{time} < $6 \
         ORDER BY t.{time}",
        cte(span.step),
        columns.join(", ")
    );
    // Assembled from constant SQL, column names and numbers; the values are
    // bound.
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(span.lo)
        .bind(span.hi)
        .bind(monitor_id.to_string())
        .bind(project_id.to_string())
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&mut *conn)
        .await
        .map_err(internal)
}

/// Rows deleted by one statement of [`prune`]: small enough that on SQLite
/// no statement holds the write lock for long (a few milliseconds), large
/// enough that the statements' own cost does not dominate.
pub(crate) const PRUNE_STEP: i64 = 4096;

/// Deletes the rows of `table` older than `before_ms` (by window start for
/// points, by bucket for rollups), oldest first, in statements of at most
/// [`PRUNE_STEP`] rows, each its own transaction, handing the writer back
/// between them so that the prober's inserts are never queued behind a
/// large delete. Each step finds the key [`PRUNE_STEP`] rows on from where
/// the last one ended (a walk over the time-major key) and deletes the
/// range up to it.
pub(crate) async fn prune(pool: &sqlx::AnyPool, table: Table, before_ms: i64) -> Result<u64> {
    // The rows to delete (over `$1`, `$2`); the same rows below a key
    // found by a step (over `$1` only: a bound of the key alone, which
    // SQLite then uses as the end of its index range instead of scanning
    // on to the end of everything old); and the key they are walked in.
    let (name, rows, first, below, only, key) = match table {
        Table::Points => (
            "monitor_points",
            "bucket_ms <= $1 AND window_start_ms < $2",
            point_bucket(before_ms),
            "window_start_ms < $1",
            before_ms,
            "bucket_ms, monitor_id, window_start_ms",
        ),
        Table::Rollups(period_s) => (
            "monitor_rollups",
            "period = $1 AND bucket_ms < $2",
            period_s,
            "period = $1",
            period_s,
            "bucket_ms, monitor_id",
        ),
    };
    let width = key.split(", ").count();
    let tuple = |from: usize| {
        let params: Vec<String> = (from..from + width).map(|i| format!("${i}")).collect();
        format!("({})", params.join(", "))
    };
    let mut total = 0;
    let mut cursor: Option<Key> = None;
    loop {
        let after = |at: usize| match cursor {
            Some(_) => format!(" AND ({key}) >= {}", tuple(at)),
            None => String::new(),
        };
        // Assembled from constant SQL; the values are bound.
        let sql = format!(
            "SELECT {key} FROM {name} WHERE {rows}{} ORDER BY {key} LIMIT 1 OFFSET {PRUNE_STEP}",
            after(3)
        );
        let next = bind_key(
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(first)
                .bind(before_ms),
            cursor.as_ref(),
        )
        .fetch_optional(pool)
        .await
        .map_err(internal)?
        .map(|r| Key::of(&r, table))
        .transpose()?;
        let deleted = match &next {
            Some(upto) => {
                let end = if cursor.is_some() { 2 + width } else { 2 };
                let sql = format!(
                    "DELETE FROM {name} WHERE {below}{} AND ({key}) < {}",
                    after(2),
                    tuple(end)
                );
                let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(only);
                bind_key(bind_key(q, cursor.as_ref()), Some(upto))
                    .execute(pool)
                    .await
            }
            None => {
                let sql = format!("DELETE FROM {name} WHERE {rows}{}", after(3));
                let q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(first)
                    .bind(before_ms);
                bind_key(q, cursor.as_ref()).execute(pool).await
            }
        };
        total += deleted.map_err(internal)?.rows_affected();
        match next {
            Some(k) => cursor = Some(k),
            None => return Ok(total),
        }
        YieldNow(false).await;
    }
}

/// A position in the time-major key of a measurement table.
struct Key {
    bucket_ms: i64,
    monitor_id: String,
    /// Points only.
    window_start_ms: Option<i64>,
}

impl Key {
    fn of(row: &sqlx::any::AnyRow, table: Table) -> Result<Key> {
        Ok(Key {
            bucket_ms: get(row, "bucket_ms")?,
            monitor_id: get(row, "monitor_id")?,
            window_start_ms: match table {
                Table::Points => Some(get(row, "window_start_ms")?),
                Table::Rollups(_) => None,
            },
        })
    }
}

fn bind_key<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    key: Option<&Key>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let Some(k) = key else { return q };
    let q = q.bind(k.bucket_ms).bind(k.monitor_id.clone());
    match k.window_start_ms {
        Some(w) => q.bind(w),
        None => q,
    }
}

/// Lets other tasks run once (whatever the executor): the writer's
/// connection goes back to the pool between two steps of [`prune`], and a
/// task waiting for it gets it before the next step.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// The rollup periods stored, in order: one key descent each.
pub(crate) async fn rollup_periods(conn: &mut AnyConnection) -> Result<Vec<i64>> {
    let mut periods = Vec::new();
    let mut after = i64::MIN;
    loop {
        let row = sqlx::query("SELECT MIN(period) AS p FROM monitor_rollups WHERE period > $1")
            .bind(after)
            .fetch_one(&mut *conn)
            .await
            .map_err(internal)?;
        match get::<Option<i64>>(&row, "p")? {
            Some(p) => {
                periods.push(p);
                after = p;
            }
            None => return Ok(periods),
        }
    }
}

/// Deletes the datapoints and rollups of the monitors that `monitors` (a
/// subquery of ids, over parameters `$3...`) selects, binding `args` to it.
pub(crate) async fn delete_monitor_rows(
    conn: &mut AnyConnection,
    monitors: &str,
    args: &[String],
) -> Result<()> {
    let mut tables = vec![Table::Points];
    tables.extend(rollup_periods(conn).await?.into_iter().map(Table::Rollups));
    for table in tables {
        let Some(span) = span(conn, table, i64::MIN, i64::MAX).await? else {
            continue;
        };
        let sql = match table {
            Table::Points => format!(
                "{} DELETE FROM monitor_points WHERE bucket_ms IN (SELECT x FROM b) \
                 AND monitor_id IN ({monitors})",
                cte(span.step)
            ),
            Table::Rollups(period_s) => format!(
                "{} DELETE FROM monitor_rollups WHERE period = {period_s} \
                 AND bucket_ms IN (SELECT x FROM b) AND monitor_id IN ({monitors})",
                cte(span.step)
            ),
        };
        // Assembled from constant SQL and numbers; the values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(span.lo)
            .bind(span.hi);
        for a in args {
            q = q.bind(a.clone());
        }
        q.execute(&mut *conn).await.map_err(internal)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_rounds_down_also_below_zero_and_saturates() {
        assert_eq!(floor(0, 10_000), 0);
        assert_eq!(floor(9_999, 10_000), 0);
        assert_eq!(floor(10_000, 10_000), 10_000);
        assert_eq!(floor(-1, 10_000), -10_000);
        assert_eq!(floor(i64::MIN, 10_000), i64::MIN);
        assert_eq!(floor(i64::MAX, 60_000) % 60_000, 0);
    }

    #[test]
    fn cte_steps_by_the_bucket() {
        assert!(cte(300_000).contains("x + 300000 <= $2"));
    }
}
