//! Engine events become store writes, in batches: status and link-state
//! changes in one transaction every [`FLUSH_EVERY`], datapoints every
//! [`POINTS_EVERY`] or when [`FLUSH_AT`] are waiting. A store that fails
//! keeps what waits for the next try, bounded ([`cap_backlog`]). Each slice
//! of datapoints that is written is then given to the alarm rules that
//! watch it ([`evaluate`]).

use super::ProbeData;
use super::registry::Registry;
use crate::prometheus::{Metrics, WriteLabels};
use domain::{MonitorId, ProjectId};
use probe::ProbeEvent;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::{LinkState, MonitorUpdate, WindowPoint};
use tokio::sync::{mpsc, watch};

/// How often the persist task takes the engine's events.
pub(crate) const DRAIN_EVERY: Duration = Duration::from_millis(100);
/// Status and link-state changes are written at least this often.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Datapoints are written every this often, or sooner when [`FLUSH_AT`]
/// wait. Each batch lands in the newest 10 s time bucket or two of the
/// points' key, and every write of a bucket rewrites the pages it has so
/// far: at 100 000 monitors, batches of 2 048 points (about five a
/// second) wrote 60-95 MB/s to the WAL; batches every 2 s write a fraction
/// of that. A crash loses at most this much of measurements.
pub(crate) const POINTS_EVERY: Duration = Duration::from_secs(2);
/// Most datapoints waiting (about 2 MB): at 100 000 monitors a batch is
/// written every ~1.6 s, with more monitors more often.
pub(crate) const FLUSH_AT: usize = 16_384;

pub(crate) fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Turns engine events into store writes, in batches: the task wakes every
/// [`DRAIN_EVERY`] rather than for each event (the engine's channel holds
/// far more than that many events), and writes what it collected every
/// [`FLUSH_EVERY`] (status and link-state changes, in one transaction) and
/// [`POINTS_EVERY`] or when [`FLUSH_AT`] are waiting (datapoints, in
/// another).
pub(crate) async fn persist(
    store: Arc<dyn ProbeData>,
    mut rx: mpsc::Receiver<ProbeEvent>,
    owners: Registry,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let ctx = Ctx {
        store,
        owners,
        metrics,
    };
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(DRAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_flush = tokio::time::Instant::now();
    let mut last_points = tokio::time::Instant::now();
    let mut last_trim = tokio::time::Instant::now();
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        let closed = loop {
            match rx.try_recv() {
                Ok(ev) => {
                    handle(&ctx, ev, &mut pending);
                    // Not again within a drain period: while the store
                    // fails, the backlog stays above FLUSH_AT and would
                    // otherwise be retried for every event.
                    if pending.points.len() >= FLUSH_AT && last_points.elapsed() >= DRAIN_EVERY {
                        flush(&ctx, &mut pending, true).await;
                        last_flush = tokio::time::Instant::now();
                        last_points = last_flush;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break false,
                Err(mpsc::error::TryRecvError::Disconnected) => break true,
            }
        };
        // Datapoints are due POINTS_EVERY after the previous batch began
        // (checked every drain, not only with the status flush), so a crash
        // loses at most the windows of the last POINTS_EVERY and the batch
        // being written.
        let points_due = last_points.elapsed() >= POINTS_EVERY;
        if stopping || closed || points_due || last_flush.elapsed() >= FLUSH_EVERY {
            let points = stopping || closed || points_due;
            let began = tokio::time::Instant::now();
            flush(&ctx, &mut pending, points).await;
            last_flush = tokio::time::Instant::now();
            if points {
                last_points = began;
            }
        }
        if last_trim.elapsed() >= super::jobs::TRIM_EVERY {
            // Bursts (a start with many monitors, a store that was slow)
            // leave freed event and batch memory in the allocator.
            super::jobs::release_freed_memory();
            last_trim = tokio::time::Instant::now();
        }
        if stopping || closed {
            break;
        }
    }
}

struct Ctx {
    store: Arc<dyn ProbeData>,
    owners: Registry,
    metrics: Arc<Metrics>,
}

/// What the next flush writes.
#[derive(Default)]
struct Pending {
    updates: Vec<MonitorUpdate>,
    /// Compact until written (no per-point strings): a 2 s batch holds
    /// 20 000 of them at 100 000 monitors.
    points: Vec<(Arc<ProjectId>, probe::WindowStats)>,
}

/// Datapoints per write transaction: a batch is sorted into key order and
/// written in slices this long, so that only one slice at a time exists as
/// store rows (with their id strings), and the slices' pages do not overlap.
const POINTS_PER_WRITE: usize = 4096;

fn window_point(project: &ProjectId, w: &probe::WindowStats) -> WindowPoint {
    WindowPoint {
        monitor_id: MonitorId::from_uuid(w.id),
        project_id: project.clone(),
        window_start_ms: ms(w.window_start),
        sent: i64::from(w.sent),
        received: i64::from(w.received),
        loss_pct: w.loss_pct,
        rtt_min_ms: w.rtt_min_ms,
        rtt_avg_ms: w.rtt_avg_ms,
        rtt_max_ms: w.rtt_max_ms,
        jitter_ms: w.jitter_ms,
    }
}

fn handle(ctx: &Ctx, ev: ProbeEvent, pending: &mut Pending) {
    match ev {
        ProbeEvent::FirstProbeSent { id } => pending.updates.push(MonitorUpdate::Status {
            id: MonitorId::from_uuid(id),
            status: domain::monitor::status::ACTIVE.to_string(),
        }),
        ProbeEvent::Window(w) => {
            let Some(owner) = ctx.owners.owner(&w.id) else {
                return;
            };
            ctx.metrics.window(|| owner.labels(w.id), w.id, &w);
            pending.points.push((owner.project, w));
        }
        ProbeEvent::LinkChanged { id, up, at } => {
            tracing::debug!(monitor = %id, up, "link state changed");
            if let Some(owner) = ctx.owners.owner(&id) {
                ctx.metrics.link(|| owner.labels(id), id, up);
            }
            pending.updates.push(MonitorUpdate::Link {
                id: MonitorId::from_uuid(id),
                state: LinkState {
                    up: Some(up),
                    changed_us: Some(ms(at) * 1000),
                    note: None,
                },
            });
        }
        ProbeEvent::NotProbed { id, reason } => {
            tracing::warn!(monitor = %id, reason = %reason, "monitor is not probed");
            pending.updates.push(MonitorUpdate::Link {
                id: MonitorId::from_uuid(id),
                state: LinkState {
                    up: None,
                    changed_us: None,
                    note: Some(reason.to_string()),
                },
            });
        }
    }
}

/// Writes the waiting updates, and the datapoints too when `points`.
async fn flush(ctx: &Ctx, pending: &mut Pending, points: bool) {
    if !pending.updates.is_empty() {
        match ctx.store.update_monitors(&pending.updates).await {
            Ok(()) => pending.updates.clear(),
            Err(e) => {
                tracing::error!(error = %e, updates = pending.updates.len(), "cannot record monitor status and link states; will retry");
                ctx.write_failed(UPDATES);
                let dropped = cap_backlog(&mut pending.updates, MAX_BACKLOG, UPDATES);
                ctx.dropped(UPDATES, dropped);
            }
        }
    }
    let batch = &mut pending.points;
    if !points || batch.is_empty() {
        return;
    }
    // Time order, so that each write covers a short span of time (the
    // store sorts each write into its own key order).
    batch.sort_by_cached_key(|(_, w)| (w.window_start, w.id));
    let mut written = 0;
    let mut rows = Vec::with_capacity(POINTS_PER_WRITE.min(batch.len()));
    for slice in batch.chunks(POINTS_PER_WRITE) {
        rows.clear();
        rows.extend(slice.iter().map(|(project, w)| window_point(project, w)));
        let started = std::time::Instant::now();
        match ctx.store.insert_points(&rows).await {
            Ok(()) => {
                ctx.metrics
                    .store_write_seconds
                    .observe(started.elapsed().as_secs_f64());
                tracing::debug!(
                    points = rows.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "datapoints written"
                );
                written += slice.len();
                evaluate(ctx, &rows).await;
            }
            Err(e) => {
                // Keep the rest for the next flush; cap memory if the store
                // stays down.
                tracing::error!(error = %e, points = batch.len() - written, "cannot write datapoints; will retry");
                ctx.write_failed(POINTS);
                break;
            }
        }
    }
    batch.drain(..written);
    let dropped = cap_backlog(batch, MAX_BACKLOG, POINTS);
    ctx.dropped(POINTS, dropped);
}

/// Evaluates the period-1 alarm rules of windows that were just stored.
/// The windows are stored whatever happens here: when evaluation fails it
/// is logged and counted (`what="alarm_evaluation"`), and those windows are
/// not evaluated again (the next ones are).
async fn evaluate(ctx: &Ctx, rows: &[WindowPoint]) {
    match ctx.store.evaluate_windows(rows).await {
        Ok(events) => {
            for e in events.iter().filter_map(|e| e.transition.map(|t| (e, t))) {
                let (e, t) = e;
                tracing::info!(
                    alarm = %e.rule.alarm_id,
                    monitor = ?e.monitor_id,
                    from = t.from.as_str(),
                    to = t.to.as_str(),
                    value = ?t.value,
                    "alarm state changed"
                );
            }
        }
        Err(e) => {
            tracing::error!(error = %e, points = rows.len(), "cannot evaluate alarm rules");
            ctx.write_failed(ALARMS);
        }
    }
}

/// The `what` label of failed alarm evaluations.
const ALARMS: &str = "alarm_evaluation";
/// The `what` label of datapoint writes.
const POINTS: &str = "datapoints";
/// The `what` label of status and link-state writes.
const UPDATES: &str = "monitor_updates";

/// Most unwritten items of each kind kept while the store is down (about
/// 100 MB of datapoints): measurements that cannot be stored are dropped,
/// counted and logged, not queued without bound.
const MAX_BACKLOG: usize = 1_000_000;

impl Ctx {
    fn write_failed(&self, what: &'static str) {
        self.metrics
            .store_write_errors
            .get_or_create(&WriteLabels { what })
            .inc();
    }
    fn dropped(&self, what: &'static str, n: usize) {
        if n > 0 {
            self.metrics
                .store_backlog_dropped
                .get_or_create(&WriteLabels { what })
                .inc_by(n as u64);
        }
    }
}

/// Keeps at most `max` unwritten items; the oldest go first. Returns how
/// many were dropped.
pub(crate) fn cap_backlog<T>(items: &mut Vec<T>, max: usize, what: &str) -> usize {
    if items.len() <= max {
        return 0;
    }
    let drop = items.len() - max;
    items.drain(..drop);
    tracing::error!(dropped = drop, what, "write backlog full; oldest dropped");
    drop
}
