//! Node membership: this node's lease in the store, kept by one supervised
//! task that drives the pure [`core::Core`].
//!
//! At start the node registers (a new [`NodeId`] per process, its
//! `--node-name`, host and start time); `Application::build` does that
//! first registration itself, so a node that cannot join does not start.
//! The task then renews the lease every 2 s on the database's clock (ttl
//! 8 s), only while it is still valid, and reports the addresses it can
//! send from and how many monitors it probes. When it cannot prove its
//! lease (trust ends at `call start + ttl - 1 s` without a renewal) it
//! fences the prober (stops every monitor) before the lease can run out
//! in the database; it unfences when a renewal succeeds again. When a
//! background task dies, or on a clean stop, it fences and deletes its row
//! so others need not wait for the ttl.

pub mod addresses;
pub mod core;
pub mod process;
pub mod view;

use self::core::{Action, Core, Mono, Op, Outcome, Timing};
use self::view::View;
use crate::health::NodeHealth;
use domain::NodeId;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use store::{NodeRegistration, NodeReport, ProbeStore};
use tokio::sync::watch;
use tokio::time::Instant;

/// The prober, as membership sees it.
pub trait Fence: Send + Sync + 'static {
    /// Stop probing every monitor.
    fn fence(&self);
    /// Probing may resume (reload what to probe).
    fn unfence(&self);
    /// The membership or this node's addresses changed: decide again which
    /// monitors this node probes.
    fn reassess(&self);
    /// What the node reports with each renewal.
    fn report(&self) -> NodeReport;
}

/// A node that probes nothing (`--no-probe`).
#[derive(Debug, Default)]
pub struct NoProber;

impl Fence for NoProber {
    fn fence(&self) {}
    fn unfence(&self) {}
    fn reassess(&self) {}
    fn report(&self) -> NodeReport {
        NodeReport::default()
    }
}

/// This host's name (the default `--node-name`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// A node's registration from its settings.
pub fn registration(node_name: Option<&str>) -> NodeRegistration {
    let host = host_name();
    NodeRegistration {
        id: NodeId::random(),
        name: node_name.map_or_else(|| host.clone(), str::to_string),
        host,
        process: process::this_process(),
    }
}

/// Joins: the first registration, before the node serves.
pub async fn join(
    store: &dyn ProbeStore,
    node: &NodeRegistration,
    timing: Timing,
) -> store::Result<Instant> {
    // A predecessor on this host whose process has ended (a crash, kill -9)
    // would keep the monitors it owned unprobed until its lease runs out.
    for n in store.live_nodes().await? {
        if n.id != node.id
            && n.process.as_deref().is_some_and(process::dead)
            && store.leave_node(&n.id).await?
        {
            tracing::info!(node = %n.id, name = %n.name,
                "removed the lease of a node whose process on this host has ended");
        }
    }
    let started = Instant::now();
    store.register_node(node, timing.ttl).await?;
    tracing::info!(node = %node.id, name = %node.name, host = %node.host, "joined the membership");
    Ok(started)
}

type Call = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Keeps the lease of `node` (granted by [`join`] at `granted_at`) until
/// `stop`, or until the node must leave because a task died.
#[expect(
    clippy::too_many_arguments,
    reason = "the task's owned inputs, each used once"
)]
pub async fn run(
    store: Arc<dyn ProbeStore>,
    node: NodeRegistration,
    timing: Timing,
    granted_at: Instant,
    view: Arc<View>,
    prober: Arc<dyn Fence>,
    health: Arc<NodeHealth>,
    mut stop: watch::Receiver<bool>,
) {
    let origin = granted_at;
    let mono = move || -> Mono { Instant::now().saturating_duration_since(origin) };
    let mut core = Core::joined(timing, Duration::ZERO);
    view.set_lease_held(Some(granted_at));
    let mut call: Option<Call> = None;
    loop {
        if *stop.borrow() {
            core.leave("the node stops");
        } else if health.failed() {
            health.note_engine_death();
            core.leave("a background task ended");
        }
        for action in core.poll(mono()) {
            match action {
                Action::Start(op) => {
                    call = Some(start(
                        store.clone(),
                        &node,
                        op,
                        timing,
                        view.clone(),
                        prober.clone(),
                    ))
                }
                Action::Abandon => {
                    tracing::warn!(node = %node.id, "a lease call did not answer in time; abandoned");
                    call = None;
                }
                Action::Fence => {
                    tracing::warn!(node = %node.id, "cannot prove the lease: probing stops");
                    view.set_lease_held(None);
                    prober.fence();
                }
                Action::Unfence => {
                    tracing::info!(node = %node.id, "lease held again: probing resumes");
                    view.set_lease_held(Some(Instant::now()));
                    prober.unfence();
                }
                Action::Leave => {
                    view.set_lease_held(None);
                    match tokio::time::timeout(timing.attempt_timeout, store.leave_node(&node.id))
                        .await
                    {
                        Ok(Ok(_)) => tracing::info!(node = %node.id, "left the membership"),
                        Ok(Err(e)) => {
                            tracing::warn!(node = %node.id, error = %e, "cannot leave the membership; the lease will run out")
                        }
                        Err(_) => {
                            tracing::warn!(node = %node.id, "leaving timed out; the lease will run out")
                        }
                    }
                }
            }
        }
        health.set_lease_problem(core.problem(mono()));
        if core.left() {
            return;
        }
        // Wake for the core, and at least every second to look at the
        // health of the other tasks.
        let wake = core
            .next_wake()
            .map_or(Duration::from_secs(1), |t| t.saturating_sub(mono()))
            .min(Duration::from_secs(1));
        tokio::select! {
            outcome = in_flight(&mut call) => {
                call = None;
                core.on_result(mono(), outcome);
            }
            _ = tokio::time::sleep(wake) => {}
            r = stop.changed() => {
                if r.is_err() {
                    core.leave("the node stops");
                }
            }
        }
    }
}

async fn in_flight(call: &mut Option<Call>) -> Outcome {
    match call {
        Some(c) => c.await,
        None => std::future::pending().await,
    }
}

fn start(
    store: Arc<dyn ProbeStore>,
    node: &NodeRegistration,
    op: Op,
    timing: Timing,
    view: Arc<View>,
    prober: Arc<dyn Fence>,
) -> Call {
    let node = node.clone();
    let report = prober.report();
    Box::pin(async move {
        let r = match op {
            Op::Register => store.register_node(&node, timing.ttl).await.map(Some),
            Op::Renew => store.renew_node(&node.id, timing.ttl, &report).await,
        };
        match r {
            Ok(Some(_)) => {
                refresh_members(store.as_ref(), &view, &*prober).await;
                Outcome::Granted
            }
            Ok(None) => Outcome::Lapsed,
            Err(e) => {
                tracing::warn!(node = %node.id, ?op, error = %e, "lease call failed");
                Outcome::Failed
            }
        }
    })
}

/// Reads the live nodes into the view; a change makes the prober decide
/// again what it probes.
pub async fn refresh_members(store: &dyn ProbeStore, view: &View, prober: &dyn Fence) {
    match store.live_nodes().await {
        Ok(live) => {
            if view.set_members(&live) {
                tracing::info!(live = live.len(), "membership changed");
                prober.reassess();
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the live nodes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::Readiness;
    use async_trait::async_trait;
    use domain::{DomainError, MonitorId, ProjectId};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use store::{LinkState, MonitorUpdate, NodeLease, NodeRecord, ProbeMonitor};

    /// A store whose lease calls succeed, fail, or hang, as the test says.
    #[derive(Default)]
    struct LeaseStore {
        failing: AtomicBool,
        hanging: AtomicBool,
        renewals: AtomicUsize,
        left: Mutex<Vec<NodeId>>,
    }

    impl LeaseStore {
        async fn answer(&self) -> store::Result<()> {
            if self.hanging.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(DomainError::Internal("connection refused".into()));
            }
            Ok(())
        }
    }

    const LEASE: NodeLease = NodeLease {
        heartbeat_us: 0,
        expires_us: 8_000_000,
    };

    #[async_trait]
    impl ProbeStore for LeaseStore {
        async fn monitors_for_probing_page(
            &self,
            _: Option<&MonitorId>,
            _: usize,
        ) -> store::Result<Vec<ProbeMonitor>> {
            Ok(Vec::new())
        }
        async fn update_monitors(&self, _: &[MonitorUpdate]) -> store::Result<()> {
            Ok(())
        }
        async fn get_link_state(&self, _: &ProjectId, _: &MonitorId) -> store::Result<LinkState> {
            Err(DomainError::NotFound)
        }
        async fn ping(&self) -> store::Result<()> {
            self.answer().await
        }
        async fn register_node(
            &self,
            _: &NodeRegistration,
            _: Duration,
        ) -> store::Result<NodeLease> {
            self.answer().await.map(|()| LEASE)
        }
        async fn renew_node(
            &self,
            _: &NodeId,
            _: Duration,
            _: &NodeReport,
        ) -> store::Result<Option<NodeLease>> {
            self.answer().await?;
            self.renewals.fetch_add(1, Ordering::SeqCst);
            Ok(Some(LEASE))
        }
        async fn leave_node(&self, id: &NodeId) -> store::Result<bool> {
            self.left.lock().unwrap().push(*id);
            Ok(true)
        }
        async fn live_nodes(&self) -> store::Result<Vec<NodeRecord>> {
            Ok(Vec::new())
        }
    }

    /// Records fences.
    #[derive(Default)]
    struct Prober {
        fenced: AtomicBool,
        fences: AtomicUsize,
        unfences: AtomicUsize,
    }

    impl Fence for Prober {
        fn fence(&self) {
            self.fenced.store(true, Ordering::SeqCst);
            self.fences.fetch_add(1, Ordering::SeqCst);
        }
        fn unfence(&self) {
            self.fenced.store(false, Ordering::SeqCst);
            self.unfences.fetch_add(1, Ordering::SeqCst);
        }
        fn reassess(&self) {}
        fn report(&self) -> NodeReport {
            NodeReport::default()
        }
    }

    struct Rig {
        store: Arc<LeaseStore>,
        prober: Arc<Prober>,
        health: Arc<NodeHealth>,
        node: NodeRegistration,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
        start: Instant,
    }

    async fn rig() -> Rig {
        let store = Arc::new(LeaseStore::default());
        let prober = Arc::new(Prober::default());
        let health = Arc::new(NodeHealth::default());
        let node = registration(Some("node-a"));
        let granted = join(store.as_ref(), &node, Timing::DEFAULT).await.unwrap();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run(
            store.clone(),
            node.clone(),
            Timing::DEFAULT,
            granted,
            Arc::new(View::new(&node, std::time::Duration::ZERO)),
            prober.clone(),
            health.clone(),
            rx,
        ));
        Rig {
            store,
            prober,
            health,
            node,
            stop,
            task,
            start: granted,
        }
    }

    async fn until(r: &Rig, secs: f64) {
        tokio::time::sleep_until(r.start + Duration::from_secs_f64(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn renews_every_two_seconds_and_leaves_on_a_clean_stop() {
        let r = rig().await;
        until(&r, 10.5).await;
        assert_eq!(
            r.store.renewals.load(Ordering::SeqCst),
            5,
            "at 2, 4, 6, 8, 10 s"
        );
        assert_eq!(r.prober.fences.load(Ordering::SeqCst), 0);
        assert_eq!(r.health.not_ready(), None);
        r.stop.send(true).unwrap();
        r.task.await.unwrap();
        assert_eq!(*r.store.left.lock().unwrap(), vec![r.node.id]);
        assert_eq!(
            r.prober.fences.load(Ordering::SeqCst),
            1,
            "fenced on leaving"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_stops_answering_fences_before_the_lease_can_run_out() {
        let r = rig().await;
        until(&r, 3.0).await; // renewed at 2 s: trusted until 9 s
        r.store.hanging.store(true, Ordering::SeqCst);
        until(&r, 8.9).await;
        assert!(
            !r.prober.fenced.load(Ordering::SeqCst),
            "still trusted at 8.9 s"
        );
        until(&r, 9.05).await;
        assert!(
            r.prober.fenced.load(Ordering::SeqCst),
            "fenced at 9 s (2 + 8 - 1)"
        );
        assert_eq!(
            r.health.not_ready(),
            Some("the node cannot prove its lease (the store did not renew it in time)".into())
        );
        // The store answers again: the next renewal unfences.
        r.store.hanging.store(false, Ordering::SeqCst);
        until(&r, 12.0).await;
        assert!(!r.prober.fenced.load(Ordering::SeqCst));
        assert_eq!(r.prober.unfences.load(Ordering::SeqCst), 1);
        assert_eq!(r.health.not_ready(), None);
        r.stop.send(true).unwrap();
        r.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn failing_renewals_fence_too() {
        let r = rig().await;
        r.store.failing.store(true, Ordering::SeqCst);
        until(&r, 6.9).await;
        assert!(!r.prober.fenced.load(Ordering::SeqCst));
        until(&r, 7.05).await;
        assert!(
            r.prober.fenced.load(Ordering::SeqCst),
            "trust of the join ends at 7 s"
        );
        r.stop.send(true).unwrap();
        r.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_task_makes_the_node_leave() {
        let r = rig().await;
        until(&r, 1.0).await;
        r.health.task_failed("persist", "it panicked");
        until(&r, 2.5).await;
        assert!(r.task.is_finished(), "the membership task ended");
        assert_eq!(*r.store.left.lock().unwrap(), vec![r.node.id]);
        assert!(r.prober.fenced.load(Ordering::SeqCst));
        assert_eq!(
            r.health.not_ready(),
            Some("the persist task ended (it panicked)".into())
        );
    }
}
