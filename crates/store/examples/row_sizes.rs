//! Bytes on disk per raw window and per rollup row (bench/row_sizes.sh).
//!
//! Writes a simulated stretch of probing for N monitors through the
//! prober's path, `MeasurementStore::insert_points` (one batch per 10 s
//! window, fixed timestamps from 2027-01-15, no real time needed), rolls up
//! every simulated minute and prepares time partitions every simulated hour
//! as the prober's jobs do, then measures the measurement tables: on SQLite
//! the pages `dbstat` counts for the tables whose names contain `points` and
//! `rollups` (after a WAL checkpoint), on PostgreSQL `pg_total_relation_size`
//! of every partition (indexes and TOAST included). Prints one JSON line.
//!
//! ```text
//! cargo run --release -p store --example row_sizes -- --monitors 200 --hours 24 [--database-url URL]
//! ```

use domain::retention::Retention;
use domain::{MonitorId, ProjectId};
use sqlx::Row;
use store::prelude::*;
use store::{Backend, SqlStore, WindowPoint};

const WINDOW_MS: i64 = 10_000;
/// 2027-01-15T08:00:00Z, a multiple of every rollup period.
const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000 + 8 * 3_600_000;

struct Args {
    monitors: usize,
    hours: i64,
    database_url: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        monitors: 200,
        hours: 24,
        database_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--monitors" => a.monitors = value.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--hours" => a.hours = value.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--database-url" => a.database_url = Some(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// A window's statistics, varied like real ones (some loss, RTTs with
/// decimals), so that no column compresses better than it would.
fn point(m: &MonitorId, p: &ProjectId, i: usize, t: i64) -> WindowPoint {
    let k = (i as i64 * 7919 + t / WINDOW_MS) % 1000;
    let received = if k % 50 == 0 { 2 } else { 3 };
    let up = k % 997 != 0;
    let rtt = 0.2 + (k as f64) * 0.0137;
    WindowPoint {
        monitor_id: *m,
        project_id: p.clone(),
        window_start_ms: t,
        sent: 3,
        received: if up { received } else { 0 },
        loss_pct: if up {
            100.0 * (3 - received) as f64 / 3.0
        } else {
            100.0
        },
        rtt_min_ms: up.then_some(rtt * 0.9),
        rtt_avg_ms: up.then_some(rtt),
        rtt_max_ms: up.then_some(rtt * 1.2),
        jitter_ms: up.then_some(rtt * 0.05),
    }
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

async fn bytes_and_rows(
    store: &SqlStore,
    pool: &sqlx::AnyPool,
    word: &str,
) -> Fallible<(i64, i64)> {
    let bytes_sql = match store.backend() {
        Backend::Sqlite => format!(
            "SELECT CAST(COALESCE(SUM(pgsize), 0) AS BIGINT) AS b FROM dbstat WHERE name LIKE '%{word}%'"
        ),
        Backend::Postgres => format!(
            "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) AS b \
             FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE 'monitor_{word}%'"
        ),
    };
    let table = format!("monitor_{word}");
    let b: i64 = sqlx::query(sqlx::AssertSqlSafe(bytes_sql))
        .fetch_one(pool)
        .await
        .map(|r| r.get("b"))
        .map_err(|e| format!("size of {word}: {e}"))?;
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM {table}"
    )))
    .fetch_one(pool)
    .await
    .map(|r| r.get("n"))
    .map_err(|e| format!("rows of {table}: {e}"))?;
    Ok((b, n))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Fallible<()> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    let url = a.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("vpnmon.db").display()
        )
    });
    let store = SqlStore::open(&url).await?;
    let p = ProjectId::generate();
    let monitors: Vec<MonitorId> = (0..a.monitors).map(|_| MonitorId::random()).collect();
    let retention = Retention::cloud_eye();
    let end = T0 + a.hours * 3_600_000;
    let mut t = T0;
    while t < end {
        if (t - T0) % 3_600_000 == 0 {
            store.prepare_partitions(&retention, t).await?;
        }
        let batch: Vec<WindowPoint> = monitors
            .iter()
            .enumerate()
            .map(|(i, m)| point(m, &p, i, t))
            .collect();
        store.insert_points(&batch).await?;
        t += WINDOW_MS;
        if (t - T0) % 60_000 == 0 {
            // As the prober does: complete buckets, two windows late.
            store.roll_up(86_400, t - 2 * WINDOW_MS).await?;
        }
    }
    store.roll_up(86_400, end).await?;
    // One connection that sees everything written, checkpointed on SQLite.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    if store.backend() == Backend::Sqlite {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await?;
    }
    let (pb, pn) = bytes_and_rows(&store, &pool, "points").await?;
    let (rb, rn) = bytes_and_rows(&store, &pool, "rollups").await?;
    let engine = match store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    println!(
        "{{\"engine\":\"{engine}\",\"monitors\":{},\"hours\":{},\"raw_rows\":{pn},\"raw_bytes\":{pb},\
         \"raw_bytes_per_row\":{:.1},\"rollup_rows\":{rn},\"rollup_bytes\":{rb},\"rollup_bytes_per_row\":{:.1}}}",
        a.monitors,
        a.hours,
        pb as f64 / pn.max(1) as f64,
        rb as f64 / rn.max(1) as f64
    );
    pool.close().await;
    store.close().await;
    Ok(())
}
