//! Periodic work over all monitors: rollups into the CES periods,
//! retention per level (raw windows and each rollup period at its own age),
//! the alarm rules' no-data check, and handing freed memory back to the
//! system.

use super::ProbeData;
use super::persist::ms;
use domain::retention::Retention;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How often freed memory is handed back to the system.
pub(crate) const TRIM_EVERY: Duration = Duration::from_secs(60);

/// How often retention runs. Each pass deletes what aged out since the last
/// one, in bounded steps (the store's `prune_*`), so a pass is short and
/// never holds SQLite's write lock for long.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Applies the retention schedule: every level (raw windows, each rollup
/// period) loses what is older than its own age; on PostgreSQL the time
/// partitions about to be written are created first, ahead of time (the
/// pass runs every 10 minutes, partitions are at least 6 hours wide).
pub(crate) async fn prune(
    store: Arc<dyn ProbeData>,
    retention: Retention,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = ms(SystemTime::now());
        match store.prepare_partitions(&retention, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(created = n, "retention: time partitions created ahead"),
            Err(e) => tracing::error!(error = %e, "retention: cannot create time partitions"),
        }
        for (level, outcome) in store.apply_retention(&retention, now).await {
            match outcome {
                Ok(p) if p.rows == 0 && p.partitions == 0 => {}
                Ok(p) => tracing::info!(
                    %level,
                    rows = p.rows,
                    partitions = p.partitions,
                    "retention: pruned old measurements"
                ),
                Err(e) => tracing::error!(%level, error = %e, "retention: cannot prune"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Rolls raw windows up into the CES periods once their buckets are
/// complete (a bucket is rolled once its end is two windows in the past,
/// so late windows are in).
pub(crate) async fn roll_up(
    store: Arc<dyn ProbeData>,
    window: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let lag = (window * 2 + super::persist::FLUSH_EVERY * 2).as_millis() as i64;
    loop {
        let now = ms(SystemTime::now());
        // Rolling the longest period rolls every shorter one first (each
        // period is built from the one below), so one call does them all.
        let top = store::ROLLUP_PERIODS[store::ROLLUP_PERIODS.len() - 1];
        match store.roll_up(top, now - lag).await {
            Ok(n) if n > 0 => tracing::debug!(period = top, rows = n, "rolled up datapoints"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot roll up datapoints"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(20)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// How often the alarm rules' no-data check runs.
pub(crate) const EXPIRE_ALARMS_EVERY: Duration = Duration::from_secs(60);

/// The alarm rules' no-data check: a rule without data for 3 hours (a
/// monitor that is not probed, deleted, or a link without replies for a
/// latency metric) becomes `insufficient_data`, recorded in its history.
pub(crate) async fn expire_alarms(store: Arc<dyn ProbeData>, mut stop: watch::Receiver<bool>) {
    loop {
        match store.expire_alarms(ms(SystemTime::now())).await {
            Ok(events) => {
                for e in &events {
                    tracing::info!(alarm = %e.rule.alarm_id, "alarm rule has insufficient data");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot check alarm rules for missing data"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EXPIRE_ALARMS_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Loading every monitor for a reconcile allocates a few hundred bytes per
/// monitor that are freed right after; glibc keeps such memory in its arenas,
/// so return it to the system (a 100 000-monitor load would otherwise stay
/// resident as ~30 MB).
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it has no
    // preconditions and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
