//! Periodic work over all monitors: rollups into the CES periods,
//! retention per level (raw windows and each rollup period at its own age),
//! the alarm rules' no-data check, and handing freed memory back to the
//! system.
//!
//! The first three are run-once jobs: with several nodes on one store only
//! the node that leads ([`View::runs_jobs`]: the oldest live node, holding
//! its lease) runs them; when it dies or loses its lease, the next oldest
//! takes over at its next membership read (a few seconds after the lease
//! runs out) and runs each job at once.

use super::ProbeData;
use super::persist::ms;
use crate::membership::view::View;
use crate::prometheus::Metrics;
use domain::retention::Retention;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a node that does not lead looks again whether it does.
pub(crate) const LEAD_POLL: Duration = Duration::from_secs(1);

/// Who runs the run-once jobs: this node's view of the membership, and the
/// gauge that shows whether it leads.
#[derive(Clone)]
pub(crate) struct Lead {
    pub view: Arc<View>,
    pub metrics: Arc<Metrics>,
}

/// Waits until a job that last ran at `last` is due again (`every`) and
/// this node leads; false when the node stops. Looks every second, so the
/// `vpnmon_node_runs_jobs` gauge is fresh and a new leader starts at once.
async fn my_turn(
    lead: &Lead,
    last: &mut Option<Instant>,
    every: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        let now = Instant::now();
        let leads = lead.view.runs_jobs(now);
        lead.metrics.set_runs_jobs(leads);
        let due = last.is_none_or(|l| now.saturating_duration_since(l) >= every);
        if due && leads {
            *last = Some(now);
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(LEAD_POLL) => {}
            _ = stop.changed() => return false,
        }
    }
}

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
    lead: Lead,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = None;
    while my_turn(&lead, &mut last, PRUNE_EVERY, &mut stop).await {
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
    }
}

/// Rolls raw windows up into the CES periods once their buckets are
/// complete (a bucket is rolled once its end is two windows in the past,
/// so late windows are in).
pub(crate) async fn roll_up(
    store: Arc<dyn ProbeData>,
    window: Duration,
    lead: Lead,
    mut stop: watch::Receiver<bool>,
) {
    let lag = (window * 2 + super::persist::FLUSH_EVERY * 2).as_millis() as i64;
    let mut last = None;
    while my_turn(&lead, &mut last, ROLL_UP_EVERY, &mut stop).await {
        let now = ms(SystemTime::now());
        // Rolling the longest period rolls every shorter one first (each
        // period is built from the one below), so one call does them all.
        let top = store::ROLLUP_PERIODS[store::ROLLUP_PERIODS.len() - 1];
        match store.roll_up(top, now - lag).await {
            Ok(n) if n > 0 => tracing::debug!(period = top, rows = n, "rolled up datapoints"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot roll up datapoints"),
        }
    }
}

/// How often complete buckets are rolled up.
pub(crate) const ROLL_UP_EVERY: Duration = Duration::from_secs(20);

/// How often the alarm rules' no-data check runs.
pub(crate) const EXPIRE_ALARMS_EVERY: Duration = Duration::from_secs(60);

/// The alarm rules' no-data check: a rule without data for 3 hours (a
/// monitor that is not probed, deleted, or a link without replies for a
/// latency metric) becomes `insufficient_data`, recorded in its history.
pub(crate) async fn expire_alarms(
    store: Arc<dyn ProbeData>,
    lead: Lead,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = None;
    while my_turn(&lead, &mut last, EXPIRE_ALARMS_EVERY, &mut stop).await {
        match store.expire_alarms(ms(SystemTime::now())).await {
            Ok(events) => {
                for e in &events {
                    tracing::info!(alarm = %e.rule.alarm_id, "alarm rule has insufficient data");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot check alarm rules for missing data"),
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
