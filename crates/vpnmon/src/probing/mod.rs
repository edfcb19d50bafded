//! Wiring of the probe engine to the store, split by job:
//! - [`registry`]: what the engine was given (monitor -> project,
//!   connection), and the API's watcher seam that tells the engine about
//!   monitors at once;
//! - [`reconcile`]: the periodic safety net that brings the engine in line
//!   with the store, a page at a time;
//! - [`changes`]: monitors created or deleted through other nodes (the
//!   store's change feed, PostgreSQL);
//! - [`persist`]: engine events become batched store writes (status, link
//!   state, datapoints), retried while the store fails, bounded;
//! - [`jobs`]: retention, rollups, the alarm rules' no-data check and
//!   memory trimming.
//!
//! The glue needs three capabilities of the store, [`ProbeStore`],
//! [`MeasurementStore`] and [`AlarmStore`] (the period-1 alarm rules are
//! evaluated as windows are stored) ([`ProbeData`]), and is tested against a
//! fake of them (`tests.rs`).

mod changes;
mod jobs;
mod persist;
mod reconcile;
mod registry;
#[cfg(test)]
mod tests;

pub use registry::ProbeWatcher;

use crate::config::Settings;
use crate::health::{NodeHealth, supervise};
use crate::membership::view::View;
use crate::prometheus::Metrics;
use probe::{Engine, EngineConfig, EngineHandle};
use registry::Registry;
use std::sync::Arc;
use store::{AlarmStore, MeasurementStore, ProbeStore};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What the probe glue needs of the store.
pub trait ProbeData: ProbeStore + MeasurementStore + AlarmStore + 'static {}

impl<T: ProbeStore + MeasurementStore + AlarmStore + 'static> ProbeData for T {}

/// A running probe service.
pub struct ProbeService {
    /// The watcher to give the API.
    pub watcher: Arc<ProbeWatcher>,
    /// The engine (counters, shutdown).
    pub engine: EngineHandle,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl ProbeService {
    /// Starts the engine and the tasks that feed it and persist its results.
    pub async fn start(
        store: Arc<dyn ProbeData>,
        settings: &Settings,
        metrics: Arc<Metrics>,
        health: Arc<NodeHealth>,
        view: Arc<View>,
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
        health.watch_engine(engine.clone());
        let owners = Registry::default();
        let watcher = Arc::new(ProbeWatcher::new(
            engine.clone(),
            owners.clone(),
            metrics.clone(),
            view.clone(),
        ));
        let (stop, stop_rx) = watch::channel(false);
        let lead = jobs::Lead {
            view,
            metrics: metrics.clone(),
        };
        let tasks = vec![
            supervise(
                "persist",
                health.clone(),
                stop_rx.clone(),
                persist::persist(store.clone(), rx, owners.clone(), metrics, stop_rx.clone()),
            ),
            supervise(
                "reconcile",
                health.clone(),
                stop_rx.clone(),
                reconcile::reconcile(store.clone(), watcher.clone(), stop_rx.clone()),
            ),
            supervise(
                "monitor-feed",
                health.clone(),
                stop_rx.clone(),
                changes::follow(store.clone(), watcher.clone(), stop_rx.clone()),
            ),
            supervise(
                "retention",
                health.clone(),
                stop_rx.clone(),
                jobs::prune(
                    store.clone(),
                    settings.retention,
                    lead.clone(),
                    stop_rx.clone(),
                ),
            ),
            supervise(
                "alarm-expiry",
                health.clone(),
                stop_rx.clone(),
                jobs::expire_alarms(store.clone(), lead.clone(), stop_rx.clone()),
            ),
            supervise(
                "rollups",
                health.clone(),
                stop_rx.clone(),
                jobs::roll_up(store, settings.probe_interval, lead, stop_rx.clone()),
            ),
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
