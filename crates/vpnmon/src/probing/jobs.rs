//! Periodic work over all monitors: retention of raw datapoints, rollups
//! into the CES periods (and their retention), the alarm rules' no-data
//! check, and handing freed memory back to the system.

use super::ProbeData;
use super::persist::ms;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How often freed memory is handed back to the system.
pub(crate) const TRIM_EVERY: Duration = Duration::from_secs(60);

/// Deletes raw datapoints older than the retention.
pub(crate) async fn prune(
    store: Arc<dyn ProbeData>,
    retention: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let before = ms(SystemTime::now()) - retention.as_millis() as i64;
        match store.prune_points(before).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned old datapoints"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot prune datapoints"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Rolls raw windows up into the CES periods once their buckets are
/// complete (a bucket is rolled once its end is two windows in the past,
/// so late windows are in), and prunes old rollups.
pub(crate) async fn roll_up(
    store: Arc<dyn ProbeData>,
    window: Duration,
    retention: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let lag = (window * 2 + super::persist::FLUSH_EVERY * 2).as_millis() as i64;
    // Rollups outlive raw points: at least 180 days.
    let keep = retention.max(Duration::from_secs(180 * 86400)).as_millis() as i64;
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
        for p in store::ROLLUP_PERIODS {
            if let Err(e) = store.prune_rollups(p, now - keep).await {
                tracing::error!(period = p, error = %e, "cannot prune rollups");
            }
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
