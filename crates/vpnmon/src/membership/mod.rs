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

pub mod core;

use self::core::{Action, Core, Mono, Op, Outcome, Timing};
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
    /// What the node reports with each renewal.
    fn report(&self) -> NodeReport;
}

/// A node that probes nothing (`--no-probe`).
#[derive(Debug, Default)]
pub struct NoProber;

impl Fence for NoProber {
    fn fence(&self) {}
    fn unfence(&self) {}
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
    }
}

/// Joins: the first registration, before the node serves.
pub async fn join(
    store: &dyn ProbeStore,
    node: &NodeRegistration,
    timing: Timing,
) -> store::Result<Instant> {
    let started = Instant::now();
    store.register_node(node, timing.ttl).await?;
    tracing::info!(node = %node.id, name = %node.name, host = %node.host, "joined the membership");
    Ok(started)
}

type Call = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Keeps the lease of `node` (granted by [`join`] at `granted_at`) until
/// `stop`, or until the node must leave because a task died.
pub async fn run(
    store: Arc<dyn ProbeStore>,
    node: NodeRegistration,
    timing: Timing,
    granted_at: Instant,
    prober: Arc<dyn Fence>,
    health: Arc<NodeHealth>,
    mut stop: watch::Receiver<bool>,
) {
    let origin = granted_at;
    let mono = move || -> Mono { Instant::now().saturating_duration_since(origin) };
    let mut core = Core::joined(timing, Duration::ZERO);
    let mut call: Option<Call> = None;
    loop {
        if *stop.borrow() {
            core.leave("the node stops");
        } else if health.failed() {
            core.leave("a background task ended");
        }
        for action in core.poll(mono()) {
            match action {
                Action::Start(op) => call = Some(start(store.clone(), &node, op, timing, &*prober)),
                Action::Abandon => {
                    tracing::warn!(node = %node.id, "a lease call did not answer in time; abandoned");
                    call = None;
                }
                Action::Fence => {
                    tracing::warn!(node = %node.id, "cannot prove the lease: probing stops");
                    prober.fence();
                }
                Action::Unfence => {
                    tracing::info!(node = %node.id, "lease held again: probing resumes");
                    prober.unfence();
                }
                Action::Leave => {
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
    prober: &dyn Fence,
) -> Call {
    let node = node.clone();
    let report = prober.report();
    Box::pin(async move {
        let r = match op {
            Op::Register => store.register_node(&node, timing.ttl).await.map(Some),
            Op::Renew => store.renew_node(&node.id, timing.ttl, &report).await,
        };
        match r {
            Ok(Some(_)) => Outcome::Granted,
            Ok(None) => Outcome::Lapsed,
            Err(e) => {
                tracing::warn!(node = %node.id, ?op, error = %e, "lease call failed");
                Outcome::Failed
            }
        }
    })
}
