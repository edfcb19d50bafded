//! The node's health, as `GET /readyz` reports it, and the supervision of
//! background tasks.
//!
//! Every background task is spawned through [`supervise`]: its owner keeps
//! the [`JoinHandle`] of a small watcher that awaits the task and, when it
//! ends while the node is not stopping (returned or panicked), logs it,
//! counts it in `vpnmon_task_failures_total{task}` and records it here. A
//! recorded failure makes the node not ready for good: a node whose data
//! stopped must not keep answering as if its monitors were probed, and the
//! membership task leaves the membership so that other nodes take its
//! monitors. The probe engine runs on its own thread; its liveness is read
//! from its handle at each check.

use crate::membership::Fence;
use crate::prometheus::{Metrics, TaskLabels};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the node knows of its own health.
#[derive(Default)]
pub struct NodeHealth {
    engine: Mutex<Option<probe::EngineHandle>>,
    failed: Mutex<Vec<String>>,
    lease: Mutex<Option<String>>,
    prober: Mutex<Option<Arc<dyn Fence>>>,
    metrics: Option<Arc<Metrics>>,
    engine_death_noted: std::sync::atomic::AtomicBool,
}

impl NodeHealth {
    /// Health that counts failures in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(NodeHealth {
            metrics: Some(metrics),
            ..NodeHealth::default()
        })
    }

    /// The probe engine whose thread must be running.
    pub fn watch_engine(&self, engine: probe::EngineHandle) {
        if let Ok(mut g) = self.engine.lock() {
            *g = Some(engine);
        }
    }

    /// The prober to fence at once when a task dies (the membership task
    /// then leaves; if it is the membership task that died, the fence is
    /// what stops probing before the lease runs out).
    pub fn fence_on_failure(&self, prober: Arc<dyn Fence>) {
        if let Ok(mut g) = self.prober.lock() {
            *g = Some(prober);
        }
    }

    /// Records that a task (or the engine thread) died.
    pub fn task_failed(&self, task: &'static str, why: &str) {
        tracing::error!(task, why, "background task ended; the node is not ready");
        let prober = self.prober.lock().ok().and_then(|g| g.clone());
        if let Some(p) = prober {
            p.fence();
        }
        if let Some(m) = &self.metrics {
            m.task_failures.get_or_create(&TaskLabels { task }).inc();
        }
        let mut g = match self.failed.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.push(format!("the {task} task ended ({why})"));
    }

    /// Sets (or clears, with `None`) why the node cannot prove its lease.
    pub fn set_lease_problem(&self, problem: Option<String>) {
        let mut g = match self.lease.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = problem;
    }

    /// Whether the engine thread, if any, has ended.
    pub fn engine_dead(&self) -> bool {
        match self.engine.lock() {
            Ok(g) => g.as_ref().is_some_and(|e| !e.is_running()),
            Err(_) => true,
        }
    }

    /// Records the end of the engine thread once (log, metric, fence), when
    /// it has ended; the membership task asks every second.
    pub fn note_engine_death(&self) {
        if self.engine_dead()
            && !self
                .engine_death_noted
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            self.task_failed("engine", "the probe engine thread ended");
        }
    }

    /// Whether any task has died (or the engine thread ended).
    pub fn failed(&self) -> bool {
        self.engine_dead() || self.failed.lock().map_or(true, |g| !g.is_empty())
    }
}

impl api::Readiness for NodeHealth {
    fn not_ready(&self) -> Option<String> {
        if self.engine_dead() {
            return Some("the probe engine is not running".into());
        }
        if let Some(first) = self.failed.lock().ok().and_then(|g| g.first().cloned()) {
            return Some(first);
        }
        self.lease.lock().ok().and_then(|g| g.clone())
    }
}

/// Spawns `task` and returns the handle of its watcher, which records the
/// task's end in `health` unless `stop` was signalled first.
pub fn supervise<F>(
    task: &'static str,
    health: Arc<NodeHealth>,
    stop: watch::Receiver<bool>,
    fut: F,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let inner = tokio::spawn(fut);
    tokio::spawn(async move {
        let outcome = inner.await;
        let stopping = *stop.borrow();
        match outcome {
            Ok(()) if stopping => {}
            Ok(()) => health.task_failed(task, "it returned"),
            Err(e) if e.is_panic() => health.task_failed(task, "it panicked"),
            Err(_) => health.task_failed(task, "it was cancelled"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::Readiness;

    #[tokio::test]
    async fn a_task_that_panics_makes_the_node_not_ready_and_is_counted() {
        let metrics = Metrics::new(10);
        let health = NodeHealth::new(metrics.clone());
        let (_stop, rx) = watch::channel(false);
        assert_eq!(health.not_ready(), None);
        supervise("persist", health.clone(), rx, async {
            panic!("injected failure");
        })
        .await
        .unwrap();
        assert_eq!(
            health.not_ready(),
            Some("the persist task ended (it panicked)".into())
        );
        assert!(health.failed());
        let text = metrics
            .render(crate::prometheus::Format::Text)
            .expect("render");
        assert!(
            text.contains("vpnmon_task_failures_total{task=\"persist\"} 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_task_that_ends_after_stop_is_not_a_failure() {
        let health = NodeHealth::new(Metrics::new(10));
        let (stop, rx) = watch::channel(false);
        let mut wait = rx.clone();
        let h = supervise("rollups", health.clone(), rx, async move {
            let _ = wait.wait_for(|v| *v).await;
        });
        stop.send(true).unwrap();
        h.await.unwrap();
        assert_eq!(health.not_ready(), None);
    }

    #[tokio::test]
    async fn a_task_that_returns_early_is_a_failure() {
        let health = NodeHealth::new(Metrics::new(10));
        let (_stop, rx) = watch::channel(false);
        supervise("reconcile", health.clone(), rx, async {})
            .await
            .unwrap();
        assert_eq!(
            health.not_ready(),
            Some("the reconcile task ended (it returned)".into())
        );
    }

    #[test]
    fn a_lease_problem_is_reported_until_cleared() {
        let health = NodeHealth::default();
        health.set_lease_problem(Some("the lease is not held".into()));
        assert_eq!(health.not_ready(), Some("the lease is not held".into()));
        health.set_lease_problem(None);
        assert_eq!(health.not_ready(), None);
    }
}
