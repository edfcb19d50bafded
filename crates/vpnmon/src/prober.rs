//! Wiring of the probe engine to the store: the engine learns monitors from
//! the store (at start, through the API's watcher seam at once, and by a
//! periodic reconcile that catches anything missed), and its events become
//! monitor status, link state and batched datapoint writes.

use crate::config::Settings;
use crate::prometheus::{Metrics, MonitorLabels};
use api::MonitorWatcher;
use probe::{Engine, EngineConfig, EngineHandle, MonitorSpec, ProbeEvent};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::{LinkState, MonitorUpdate, ProbeMonitor, Store, WindowPoint};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How often the engine's monitor set is reconciled with the store (a
/// safety net: the API's watcher tells the engine about changes at once).
const RECONCILE_EVERY: Duration = Duration::from_secs(300);
/// How often freed memory is handed back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// How often the persist task takes the engine's events.
const DRAIN_EVERY: Duration = Duration::from_millis(100);
/// Status and link-state changes are written at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Datapoints are written every this often, or sooner when [`FLUSH_AT`]
/// wait. Each batch lands in the newest 10 s time bucket or two of the
/// points' key, and every write of a bucket rewrites the pages it has so
/// far: at 100 000 monitors, batches of 2 048 points (about five a
/// second) wrote 60-95 MB/s to the WAL; batches every 2 s write a fraction
/// of that. A crash loses at most this much of measurements.
const POINTS_EVERY: Duration = Duration::from_secs(2);
/// Most datapoints waiting (about 2 MB): at 100 000 monitors a batch is
/// written every ~1.6 s, with more monitors more often.
const FLUSH_AT: usize = 16_384;

/// Every monitor given to the engine: which project it belongs to
/// (datapoints are stored per project; project ids are shared, not copied
/// per monitor), its connection (for metric labels), and a digest of the
/// addresses it was given with, so a reconcile sees what changed.
#[derive(Default)]
struct Owners {
    by_monitor: HashMap<Uuid, Owner>,
    interned: HashMap<String, Arc<str>>,
}

#[derive(Clone)]
struct Owner {
    project: Arc<str>,
    connection: Uuid,
    addresses: u64,
}

/// Digest of a monitor's source and destination.
fn addresses_digest(s: &MonitorSpec) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (s.source, s.destination).hash(&mut h);
    h.finish()
}

impl Owners {
    fn insert(&mut self, spec: &MonitorSpec, project: &str, connection: Uuid) {
        let id = spec.id;
        let p = match self.interned.get(project) {
            Some(p) => p.clone(),
            None => {
                let p: Arc<str> = Arc::from(project);
                self.interned.insert(project.to_string(), p.clone());
                p
            }
        };
        self.by_monitor.insert(
            id,
            Owner {
                project: p,
                connection,
                addresses: addresses_digest(spec),
            },
        );
    }
}

impl Owner {
    fn labels(&self, id: Uuid) -> MonitorLabels {
        MonitorLabels {
            project: self.project.to_string(),
            vpn_connection: self.connection.to_string(),
            monitor: id.to_string(),
        }
    }
}

/// The engine, as the API's watcher sees it.
pub struct ProbeWatcher {
    engine: EngineHandle,
    owners: Arc<std::sync::Mutex<Owners>>,
    metrics: Arc<Metrics>,
}

fn spec(m: &ProbeMonitor) -> Option<MonitorSpec> {
    Some(MonitorSpec {
        id: Uuid::parse_str(&m.id).ok()?,
        source: m.source_ip.parse::<IpAddr>().ok()?,
        destination: m.destination_ip.parse::<IpAddr>().ok()?,
    })
}

impl MonitorWatcher for ProbeWatcher {
    fn created(&self, m: &ProbeMonitor) {
        if let Some(s) = spec(m) {
            let conn = Uuid::parse_str(&m.vpn_connection_id).unwrap_or_default();
            if let Ok(mut o) = self.owners.lock() {
                o.insert(&s, &m.project_id, conn);
            }
            self.engine.upsert(s);
        }
    }
    fn deleted(&self, id: &str) {
        if let Ok(u) = Uuid::parse_str(id) {
            self.engine.remove(u);
            let gone = self
                .owners
                .lock()
                .ok()
                .and_then(|mut o| o.by_monitor.remove(&u));
            if let Some(owner) = gone {
                self.metrics.remove(&owner.labels(u), u);
            }
        }
    }
}

/// A running probe service.
pub struct ProbeService {
    /// The watcher to give the API.
    pub watcher: Arc<ProbeWatcher>,
    /// The engine (counters, shutdown).
    pub engine: EngineHandle,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl ProbeService {
    /// Starts the engine and the tasks that feed it and persist its results.
    pub async fn start(
        store: Arc<dyn Store>,
        settings: &Settings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, probe::ProbeError> {
        let cfg = EngineConfig {
            interval: settings.probe_interval,
            count: settings.probe_count,
            timeout: settings.probe_timeout,
            allow: settings.probe_allow.clone(),
            ..EngineConfig::default()
        };
        let (tx, rx) = mpsc::channel(65_536);
        let engine = Engine::start(cfg, tx).await?;
        for s in engine.sockets() {
            tracing::info!(socket = ?s, "probe socket open");
        }
        metrics.attach_engine(engine.clone());
        let owners = Arc::new(std::sync::Mutex::new(Owners::default()));
        let watcher = Arc::new(ProbeWatcher {
            engine: engine.clone(),
            owners: owners.clone(),
            metrics: metrics.clone(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(persist(
                store.clone(),
                rx,
                owners.clone(),
                metrics,
                stop_rx.clone(),
            )),
            tokio::spawn(reconcile(store.clone(), watcher.clone(), stop_rx.clone())),
            tokio::spawn(prune(store.clone(), settings.retention, stop_rx.clone())),
            tokio::spawn(roll_up(
                store,
                settings.probe_interval,
                settings.retention,
                stop_rx,
            )),
        ];
        Ok(ProbeService {
            watcher,
            engine,
            tasks,
            stop,
        })
    }

    /// Stops the tasks (flushing datapoints) and the engine.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.engine.clone().shutdown().await;
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "probe task failed");
            }
        }
    }
}

/// Monitors read from the store per page during a reconcile.
const RECONCILE_PAGE: usize = 5_000;

/// Loads every monitor into the engine, a page at a time, and removes those
/// gone from the store; what the engine has is what [`Owners`] records.
async fn reconcile(store: Arc<dyn Store>, w: Arc<ProbeWatcher>, mut stop: watch::Receiver<bool>) {
    loop {
        // Only monitors known before the store is read can be gone from it
        // (one the API creates meanwhile is not in this snapshot); each one
        // the store still has is taken out, and what is left is gone.
        let mut gone: std::collections::HashSet<Uuid> = w
            .owners
            .lock()
            .map(|o| o.by_monitor.keys().copied().collect())
            .unwrap_or_default();
        match load_all(store.as_ref(), &w, &mut gone).await {
            Ok(()) => {
                for id in gone.drain() {
                    w.deleted(&id.to_string());
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load monitors for probing"),
        }
        drop(gone);
        release_freed_memory();
        tokio::select! {
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Gives the engine every monitor of the store that is new or has new
/// addresses, and takes every monitor seen out of `unseen`.
async fn load_all(
    store: &dyn Store,
    w: &ProbeWatcher,
    unseen: &mut std::collections::HashSet<Uuid>,
) -> store::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let page = store
            .monitors_for_probing_page(after.as_deref(), RECONCILE_PAGE)
            .await?;
        for m in &page {
            let Some(s) = spec(m) else {
                tracing::warn!(monitor = %m.id, "monitor has unparsable addresses; not probed");
                continue;
            };
            let known = w
                .owners
                .lock()
                .ok()
                .and_then(|o| o.by_monitor.get(&s.id).map(|o| o.addresses));
            if known != Some(addresses_digest(&s)) {
                w.created(m);
            }
            unseen.remove(&s.id);
        }
        if page.len() < RECONCILE_PAGE {
            return Ok(());
        }
        after = page.last().map(|m| m.id.clone());
    }
}

/// Turns engine events into store writes, in batches: the task wakes every
/// [`DRAIN_EVERY`] rather than for each event (the engine's channel holds
/// far more than that many events), and writes what it collected every
/// [`FLUSH_EVERY`] (status and link-state changes, in one transaction) and
/// [`POINTS_EVERY`] or when [`FLUSH_AT`] are waiting (datapoints, in
/// another).
async fn persist(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<ProbeEvent>,
    owners: Arc<std::sync::Mutex<Owners>>,
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
        if stopping || closed || last_flush.elapsed() >= FLUSH_EVERY {
            let points = stopping || closed || last_points.elapsed() >= POINTS_EVERY;
            flush(&ctx, &mut pending, points).await;
            last_flush = tokio::time::Instant::now();
            if points {
                last_points = last_flush;
            }
        }
        if last_trim.elapsed() >= TRIM_EVERY {
            // Bursts (a start with many monitors, a store that was slow)
            // leave freed event and batch memory in the allocator.
            release_freed_memory();
            last_trim = tokio::time::Instant::now();
        }
        if stopping || closed {
            break;
        }
    }
}

struct Ctx {
    store: Arc<dyn Store>,
    owners: Arc<std::sync::Mutex<Owners>>,
    metrics: Arc<Metrics>,
}

/// What the next flush writes.
#[derive(Default)]
struct Pending {
    updates: Vec<MonitorUpdate>,
    /// Compact until written (no per-point strings): a 2 s batch holds
    /// 20 000 of them at 100 000 monitors.
    points: Vec<(Arc<str>, probe::WindowStats)>,
}

/// Datapoints per write transaction: a batch is sorted into key order and
/// written in slices this long, so that only one slice at a time exists as
/// store rows (with their id strings), and the slices' pages do not overlap.
const POINTS_PER_WRITE: usize = 4096;

fn window_point(project: &str, w: &probe::WindowStats) -> WindowPoint {
    WindowPoint {
        monitor_id: w.id.to_string(),
        project_id: project.to_string(),
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

fn owner_of(ctx: &Ctx, id: &Uuid) -> Option<Owner> {
    ctx.owners
        .lock()
        .ok()
        .and_then(|o| o.by_monitor.get(id).cloned())
}

fn handle(ctx: &Ctx, ev: ProbeEvent, pending: &mut Pending) {
    match ev {
        ProbeEvent::FirstProbeSent { id } => pending.updates.push(MonitorUpdate::Status {
            id: id.to_string(),
            status: domain::monitor::status::ACTIVE.to_string(),
        }),
        ProbeEvent::Window(w) => {
            let Some(owner) = owner_of(ctx, &w.id) else {
                return;
            };
            ctx.metrics.window(|| owner.labels(w.id), w.id, &w);
            pending.points.push((owner.project, w));
        }
        ProbeEvent::LinkChanged { id, up, at } => {
            tracing::debug!(monitor = %id, up, "link state changed");
            if let Some(owner) = owner_of(ctx, &id) {
                ctx.metrics.link(|| owner.labels(id), id, up);
            }
            pending.updates.push(MonitorUpdate::Link {
                id: id.to_string(),
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
                id: id.to_string(),
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
                cap_backlog(&mut pending.updates, "monitor updates");
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
            }
            Err(e) => {
                // Keep the rest for the next flush; cap memory if the store
                // stays down.
                tracing::error!(error = %e, points = batch.len() - written, "cannot write datapoints; will retry");
                break;
            }
        }
    }
    batch.drain(..written);
    cap_backlog(batch, "datapoints");
}

/// Keep at most a million unwritten items while the store is down; the
/// oldest go first.
fn cap_backlog<T>(items: &mut Vec<T>, what: &str) {
    const MAX_BACKLOG: usize = 1_000_000;
    if items.len() > MAX_BACKLOG {
        let drop = items.len() - MAX_BACKLOG;
        items.drain(..drop);
        tracing::error!(dropped = drop, what, "write backlog full; oldest dropped");
    }
}

/// Deletes raw datapoints older than the retention.
async fn prune(store: Arc<dyn Store>, retention: Duration, mut stop: watch::Receiver<bool>) {
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
async fn roll_up(
    store: Arc<dyn Store>,
    window: Duration,
    retention: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let lag = (window * 2 + FLUSH_EVERY * 2).as_millis() as i64;
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

/// Loading every monitor for a reconcile allocates a few hundred bytes per
/// monitor that are freed right after; glibc keeps such memory in its arenas,
/// so return it to the system (a 100 000-monitor load would otherwise stay
/// resident as ~30 MB).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it has no
    // preconditions and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
