//! The probe glue against a fake store: batching, the retry rule for a
//! failing store, and a registry lock poisoned by a panic. Time is tokio's
//! paused clock, so the drain and flush periods are exact.

use super::persist::{DRAIN_EVERY, FLUSH_AT, POINTS_EVERY, persist};
use super::registry::Registry;
use crate::prometheus::Metrics;
use async_trait::async_trait;
use domain::AlarmId;
use domain::alarm::{AlarmHistory, AlarmRule, UpdateAlarm};
use domain::{ConnectionId, DomainError, MonitorId, ProjectId};
use probe::{MonitorSpec, ProbeEvent, WindowStats};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use store::{
    AlarmEvent, AlarmPage, AlarmStore, HistoryQuery, LinkState, MeasurementStore, MonitorUpdate,
    ProbeMonitor, ProbeStore, Rollup, WindowPoint,
};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// Records every write; fails them while `failing` is set.
#[derive(Default)]
struct FakeStore {
    failing: AtomicBool,
    point_calls: AtomicUsize,
    update_calls: AtomicUsize,
    points: Mutex<Vec<Vec<WindowPoint>>>,
    updates: Mutex<Vec<Vec<MonitorUpdate>>>,
    /// Batches given to the alarm evaluation.
    evaluated: Mutex<Vec<Vec<WindowPoint>>>,
}

impl FakeStore {
    fn fail(&self) -> store::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(DomainError::Internal("disk full".into()))
        } else {
            Ok(())
        }
    }
    fn stored_points(&self) -> usize {
        self.points.lock().unwrap().iter().map(Vec::len).sum()
    }
}

#[async_trait]
impl ProbeStore for FakeStore {
    async fn monitors_for_probing_page(
        &self,
        _: Option<&MonitorId>,
        _: usize,
    ) -> store::Result<Vec<ProbeMonitor>> {
        Ok(Vec::new())
    }
    async fn update_monitors(&self, updates: &[MonitorUpdate]) -> store::Result<()> {
        self.update_calls.fetch_add(1, Ordering::SeqCst);
        self.fail()?;
        self.updates.lock().unwrap().push(updates.to_vec());
        Ok(())
    }
    async fn get_link_state(&self, _: &ProjectId, _: &MonitorId) -> store::Result<LinkState> {
        Err(DomainError::NotFound)
    }
    async fn ping(&self) -> store::Result<()> {
        self.fail()
    }
    async fn register_node(
        &self,
        _: &store::NodeRegistration,
        _: Duration,
    ) -> store::Result<store::NodeLease> {
        Err(DomainError::Internal("no membership in the fake".into()))
    }
    async fn renew_node(
        &self,
        _: &domain::NodeId,
        _: Duration,
        _: &store::NodeReport,
    ) -> store::Result<Option<store::NodeLease>> {
        Ok(None)
    }
    async fn leave_node(&self, _: &domain::NodeId) -> store::Result<bool> {
        Ok(false)
    }
    async fn live_nodes(&self) -> store::Result<Vec<store::NodeRecord>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl MeasurementStore for FakeStore {
    async fn insert_points(&self, points: &[WindowPoint]) -> store::Result<()> {
        self.point_calls.fetch_add(1, Ordering::SeqCst);
        self.fail()?;
        self.points.lock().unwrap().push(points.to_vec());
        Ok(())
    }
    async fn list_points(
        &self,
        _: &ProjectId,
        _: &MonitorId,
        _: i64,
        _: i64,
    ) -> store::Result<Vec<WindowPoint>> {
        Ok(Vec::new())
    }
    async fn prune_points(&self, _: i64) -> store::Result<u64> {
        Ok(0)
    }
    async fn roll_up(&self, _: i64, _: i64) -> store::Result<u64> {
        Ok(0)
    }
    async fn list_rollups(
        &self,
        _: &ProjectId,
        _: &MonitorId,
        _: i64,
        _: i64,
        _: i64,
    ) -> store::Result<Vec<Rollup>> {
        Ok(Vec::new())
    }
    async fn prune_rollups(&self, _: i64, _: i64) -> store::Result<u64> {
        Ok(0)
    }
    async fn apply_retention(
        &self,
        _: &domain::retention::Retention,
        _: i64,
    ) -> Vec<(domain::retention::Level, store::Result<store::Pruned>)> {
        Vec::new()
    }
    async fn prepare_partitions(
        &self,
        _: &domain::retention::Retention,
        _: i64,
    ) -> store::Result<u64> {
        Ok(0)
    }
}

#[async_trait]
impl AlarmStore for FakeStore {
    async fn create_alarm(&self, _: &ProjectId, _: &AlarmRule) -> store::Result<()> {
        Ok(())
    }
    async fn get_alarm(&self, _: &ProjectId, _: &AlarmId) -> store::Result<AlarmRule> {
        Err(DomainError::NotFound)
    }
    async fn list_alarms(
        &self,
        _: &ProjectId,
        _: Option<&AlarmId>,
        _: i64,
        _: bool,
    ) -> store::Result<AlarmPage> {
        Ok(AlarmPage {
            items: Vec::new(),
            total: 0,
        })
    }
    async fn connection_alarms(
        &self,
        _: &ProjectId,
        _: &domain::ConnectionId,
    ) -> store::Result<Vec<AlarmRule>> {
        Ok(Vec::new())
    }
    async fn update_alarm(
        &self,
        _: &ProjectId,
        _: &AlarmId,
        _: &UpdateAlarm,
    ) -> store::Result<AlarmRule> {
        Err(DomainError::NotFound)
    }
    async fn set_alarm_enabled(&self, _: &ProjectId, _: &AlarmId, _: bool) -> store::Result<()> {
        Err(DomainError::NotFound)
    }
    async fn delete_alarm(&self, _: &ProjectId, _: &AlarmId) -> store::Result<()> {
        Err(DomainError::NotFound)
    }
    async fn list_alarm_history(
        &self,
        _: &ProjectId,
        _: &HistoryQuery,
    ) -> store::Result<(Vec<AlarmHistory>, i64)> {
        Ok((Vec::new(), 0))
    }
    async fn evaluate_windows(&self, points: &[WindowPoint]) -> store::Result<Vec<AlarmEvent>> {
        self.evaluated.lock().unwrap().push(points.to_vec());
        Ok(Vec::new())
    }
    async fn expire_alarms(&self, _: i64) -> store::Result<Vec<AlarmEvent>> {
        Ok(Vec::new())
    }
    async fn alarm_states(&self, _: i64) -> store::Result<(Vec<(ProjectId, AlarmRule)>, i64)> {
        Ok((Vec::new(), 0))
    }
}

struct Rig {
    store: Arc<FakeStore>,
    events: mpsc::Sender<ProbeEvent>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    monitors: Vec<Uuid>,
    project: ProjectId,
    registry: Registry,
}

/// A persist task over a fake store, with `n` monitors registered.
fn rig(n: usize) -> Rig {
    let store = Arc::new(FakeStore::default());
    let registry = Registry::default();
    let project = ProjectId::generate();
    let monitors: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    for (i, id) in monitors.iter().enumerate() {
        let spec = MonitorSpec {
            id: *id,
            source: "127.0.0.2".parse().unwrap(),
            destination: format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250)
                .parse()
                .unwrap(),
            resume: false,
        };
        registry
            .lock()
            .insert(&spec, &project, ConnectionId::random());
    }
    let (events, rx) = mpsc::channel(1 << 20);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(persist(
        store.clone(),
        rx,
        registry.clone(),
        Metrics::new(0),
        stop_rx,
    ));
    Rig {
        store,
        events,
        stop,
        task,
        monitors,
        project,
        registry,
    }
}

fn window(id: Uuid, start_s: u64) -> ProbeEvent {
    ProbeEvent::Window(WindowStats {
        id,
        window_start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + start_s),
        sent: 3,
        received: 3,
        loss_pct: 0.0,
        rtt_min_ms: Some(1.0),
        rtt_avg_ms: Some(1.5),
        rtt_max_ms: Some(2.0),
        jitter_ms: Some(0.5),
    })
}

/// Lets the persist task run until `d` of (paused) time has passed.
async fn run_for(d: Duration) {
    let step = Duration::from_millis(10);
    let mut t = Duration::ZERO;
    while t < d {
        tokio::time::advance(step).await;
        tokio::task::yield_now().await;
        t += step;
    }
}

#[tokio::test(start_paused = true)]
async fn datapoints_wait_for_the_points_period_then_go_in_time_order_with_their_project() {
    let r = rig(3);
    // Newest first: the writer puts them in time order.
    for (i, id) in r.monitors.iter().enumerate().rev() {
        r.events.send(window(*id, i as u64)).await.unwrap();
    }
    run_for(POINTS_EVERY / 2).await;
    assert_eq!(r.store.stored_points(), 0, "not before the points period");
    run_for(POINTS_EVERY).await;
    let batches = r.store.points.lock().unwrap().clone();
    assert_eq!(batches.len(), 1, "one write for the three points");
    let starts: Vec<i64> = batches[0].iter().map(|p| p.window_start_ms).collect();
    let mut sorted = starts.clone();
    sorted.sort_unstable();
    assert_eq!(starts, sorted, "time order");
    assert!(batches[0].iter().all(|p| p.project_id == r.project));
    let ids: Vec<MonitorId> = batches[0].iter().map(|p| p.monitor_id).collect();
    assert_eq!(
        ids,
        r.monitors
            .iter()
            .map(|u| MonitorId::from_uuid(*u))
            .collect::<Vec<_>>()
    );
    r.stop.send(true).unwrap();
    r.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn status_and_link_changes_go_in_one_batch_per_flush() {
    let r = rig(2);
    for id in &r.monitors {
        r.events
            .send(ProbeEvent::FirstProbeSent { id: *id })
            .await
            .unwrap();
        r.events
            .send(ProbeEvent::LinkChanged {
                id: *id,
                up: true,
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            })
            .await
            .unwrap();
    }
    run_for(Duration::from_millis(700)).await;
    let batches = r.store.updates.lock().unwrap().clone();
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert_eq!(batches[0].len(), 4);
    assert!(matches!(
        &batches[0][0],
        MonitorUpdate::Status { id, status } if *id == MonitorId::from_uuid(r.monitors[0]) && status == "ACTIVE"
    ));
    assert!(matches!(
        &batches[0][1],
        MonitorUpdate::Link {
            state: LinkState { up: Some(true), .. },
            ..
        }
    ));
    r.stop.send(true).unwrap();
    r.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_is_retried_at_most_once_per_drain_period_and_nothing_is_lost() {
    let r = rig(1);
    r.store.failing.store(true, Ordering::SeqCst);
    // More than FLUSH_AT points arrive at once (a backlog), then more
    // keep arriving while the store fails.
    for i in 0..(FLUSH_AT + 100) {
        r.events
            .send(window(r.monitors[0], i as u64))
            .await
            .unwrap();
    }
    let periods = 20u32;
    for k in 0..periods {
        for j in 0..50u64 {
            r.events
                .send(window(r.monitors[0], 1_000_000 + u64::from(k) * 100 + j))
                .await
                .unwrap();
        }
        run_for(DRAIN_EVERY).await;
    }
    let tries = r.store.point_calls.load(Ordering::SeqCst);
    // One try per drain period at most (each a single failing write: the
    // rest of the batch waits), not one per event (21 384 events).
    assert!(tries >= 1, "the store was tried");
    assert!(
        tries <= periods as usize + 2,
        "{tries} tries in {periods} drain periods"
    );
    assert_eq!(r.store.stored_points(), 0);

    // The store comes back: everything that waited is written.
    r.store.failing.store(false, Ordering::SeqCst);
    run_for(POINTS_EVERY + DRAIN_EVERY * 2).await;
    assert_eq!(
        r.store.stored_points(),
        FLUSH_AT + 100 + 50 * periods as usize
    );
    r.stop.send(true).unwrap();
    r.task.await.unwrap();
}

#[test]
fn a_full_backlog_drops_the_oldest_and_says_how_many() {
    let mut items: Vec<u32> = (0..10).collect();
    assert_eq!(super::persist::cap_backlog(&mut items, 10, "t"), 0);
    assert_eq!(super::persist::cap_backlog(&mut items, 4, "t"), 6);
    assert_eq!(items, vec![6, 7, 8, 9]);
}

#[tokio::test(start_paused = true)]
async fn failed_writes_are_counted_by_kind() {
    let store = Arc::new(FakeStore::default());
    store.failing.store(true, Ordering::SeqCst);
    let registry = Registry::default();
    let project = ProjectId::generate();
    let id = Uuid::new_v4();
    registry.lock().insert(
        &MonitorSpec {
            id,
            source: "127.0.0.2".parse().unwrap(),
            destination: "127.0.0.3".parse().unwrap(),
            resume: false,
        },
        &project,
        ConnectionId::random(),
    );
    let metrics = Metrics::new(0);
    let (events, rx) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(persist(
        store.clone(),
        rx,
        registry,
        metrics.clone(),
        stop_rx,
    ));
    events.send(window(id, 0)).await.unwrap();
    events
        .send(ProbeEvent::FirstProbeSent { id })
        .await
        .unwrap();
    run_for(POINTS_EVERY + DRAIN_EVERY).await;
    let errors = |what: &'static str| {
        metrics
            .store_write_errors
            .get_or_create(&crate::prometheus::WriteLabels { what })
            .get()
    };
    assert!(errors("datapoints") >= 1);
    assert!(errors("monitor_updates") >= 1);
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_registry_poisoned_by_a_panic_still_routes_datapoints() {
    let r = rig(2);
    r.registry.poison();
    for id in &r.monitors {
        r.events.send(window(*id, 0)).await.unwrap();
    }
    r.stop.send(true).unwrap();
    r.task.await.unwrap();
    assert_eq!(r.store.stored_points(), 2, "no datapoint dropped");
}

#[tokio::test(start_paused = true)]
async fn a_clean_stop_writes_everything_that_waits() {
    let r = rig(5);
    for id in &r.monitors {
        r.events.send(window(*id, 0)).await.unwrap();
        r.events
            .send(ProbeEvent::FirstProbeSent { id: *id })
            .await
            .unwrap();
    }
    tokio::task::yield_now().await;
    r.stop.send(true).unwrap();
    r.task.await.unwrap();
    assert_eq!(r.store.stored_points(), 5);
    assert_eq!(
        r.store
            .updates
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .sum::<usize>(),
        5
    );
}

#[tokio::test(start_paused = true)]
async fn windows_of_monitors_the_engine_was_not_given_are_not_stored() {
    let r = rig(1);
    r.events.send(window(Uuid::new_v4(), 0)).await.unwrap();
    r.events.send(window(r.monitors[0], 0)).await.unwrap();
    r.stop.send(true).unwrap();
    r.task.await.unwrap();
    let batches = r.store.points.lock().unwrap().clone();
    assert_eq!(batches.concat().len(), 1);
    assert_eq!(
        batches[0][0].monitor_id,
        MonitorId::from_uuid(r.monitors[0])
    );
}

// ---------- fencing and ownership in the watcher ----------

fn probe_monitor(source: &str) -> ProbeMonitor {
    ProbeMonitor {
        id: MonitorId::random(),
        project_id: ProjectId::generate(),
        vpn_connection_id: ConnectionId::random(),
        source_ip: source.into(),
        destination_ip: "127.0.0.10".into(),
        status: "PENDING_CREATE".into(),
    }
}

#[tokio::test]
async fn the_watcher_gives_the_engine_only_owned_monitors_and_nothing_while_fenced() {
    use crate::membership::Fence;
    use crate::membership::view::View;
    use api::MonitorWatcher;

    let (tx, _rx) = mpsc::channel(1024);
    let engine = match probe::Engine::start(probe::EngineConfig::default(), tx).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skipping: no ICMP socket here ({e})");
            return;
        }
    };
    let node = crate::membership::registration(Some("node-a"));
    let view = Arc::new(View::new(&node, std::time::Duration::ZERO));
    view.set_local(vec!["127.0.0.0/8".parse().unwrap()]);
    let w = super::registry::ProbeWatcher::new(
        engine.clone(),
        Registry::default(),
        Metrics::new(10),
        view,
    );
    let mine = probe_monitor("127.0.0.2");
    let nobodys = probe_monitor("198.18.0.5");
    w.created(&mine);
    w.created(&nobodys);
    assert_eq!(
        w.report().monitors,
        1,
        "only the monitor this node can send from"
    );
    assert_eq!(w.report().addresses, ["127.0.0.0/8"]);

    w.fence();
    assert_eq!(w.report().monitors, 0, "fencing takes every monitor off");
    w.created(&probe_monitor("127.0.0.3"));
    assert_eq!(w.report().monitors, 0, "nothing is given while fenced");

    w.unfence();
    tokio::time::timeout(Duration::from_secs(1), w.reload.notified())
        .await
        .expect("unfencing wakes the reconcile");
    w.created(&mine);
    assert_eq!(w.report().monitors, 1);
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stored_windows_and_only_those_go_to_the_alarm_evaluation() {
    let r = rig(2);
    r.store.failing.store(true, Ordering::SeqCst);
    for id in &r.monitors {
        r.events.send(window(*id, 0)).await.unwrap();
    }
    run_for(POINTS_EVERY + DRAIN_EVERY).await;
    assert!(
        r.store.evaluated.lock().unwrap().is_empty(),
        "windows that were not stored are not evaluated"
    );
    r.store.failing.store(false, Ordering::SeqCst);
    run_for(POINTS_EVERY + DRAIN_EVERY).await;
    let stored = r.store.points.lock().unwrap().clone();
    let evaluated = r.store.evaluated.lock().unwrap().clone();
    assert_eq!(stored.iter().map(Vec::len).sum::<usize>(), 2);
    assert_eq!(
        evaluated, stored,
        "each stored slice is evaluated once, as stored"
    );
    r.stop.send(true).unwrap();
    r.task.await.unwrap();
}
