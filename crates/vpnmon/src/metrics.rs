//! Prometheus exposition on its own listener (`--metrics-listen`, default
//! `127.0.0.1:9180`, `off` to disable): `GET /metrics` in the OpenMetrics
//! text format.
//!
//! Families and labels (cardinality):
//! - per monitor, labels `project`, `vpn_connection`, `monitor` (one series
//!   set per monitor, at most `--metrics-max-monitors`, default 1 000 (about 3 KB each);
//!   monitors beyond that are counted in `vpnmon_monitors_unexported`):
//!   `vpnmon_monitor_rtt_seconds{stat=min|avg|max|jitter}` (last window),
//!   `vpnmon_monitor_loss_ratio` (last window), `vpnmon_monitor_probes_sent_total`,
//!   `vpnmon_monitor_probes_received_total`, `vpnmon_monitor_link_up`;
//! - engine internals, no labels: `vpnmon_probe_*`;
//! - store writes: `vpnmon_store_write_seconds` (histogram of datapoint batch writes);
//! - supervision: `vpnmon_task_failures_total{task}` (background tasks that died);
//! - ownership: `vpnmon_monitors_unowned` (monitors no live node can probe);
//! - API: `vpnmon_api_requests_total{method,route,status}` and
//!   `vpnmon_api_request_duration_seconds{method,route}` (route templates such as
//!   `/v5/:project_id/connection-monitors`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Labels of per-monitor series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MonitorLabels {
    pub project: String,
    pub vpn_connection: String,
    pub monitor: String,
}

/// Labels of the task failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub task: &'static str,
}

/// Labels of the RTT gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RttLabels {
    pub project: String,
    pub vpn_connection: String,
    pub monitor: String,
    pub stat: &'static str,
}

type FGauge = Gauge<f64, AtomicU64>;

macro_rules! engine_counters {
    ($($field:ident => $name:literal, $help:literal;)*) => {
        struct EngineCounterSet { $($field: Counter,)* }
        impl EngineCounterSet {
            fn new(r: &mut Registry) -> Self {
                let s = EngineCounterSet { $($field: Counter::default(),)* };
                $(r.register($name, $help, s.$field.clone());)*
                s
            }
            fn update(&self, c: &probe::EngineCounters) {
                $(
                    let cur = self.$field.get();
                    if c.$field > cur { self.$field.inc_by(c.$field - cur); }
                )*
            }
        }
    };
}

engine_counters! {
    sent => "vpnmon_probe_sent", "Echo requests sent";
    received => "vpnmon_probe_received", "Echo replies matched to a probe";
    timeouts => "vpnmon_probe_timeouts", "Probes without a reply within the timeout";
    unmatched => "vpnmon_probe_unmatched_replies", "Echo replies that are not ours (other pings, stray replies)";
    malformed => "vpnmon_probe_malformed_packets", "Packets that could not be parsed";
    duplicates => "vpnmon_probe_duplicate_replies", "Second and later replies to one probe";
    late => "vpnmon_probe_late_replies", "Replies after the timeout or after the monitor went away";
    send_errors => "vpnmon_probe_send_errors", "Sends the kernel refused";
    recv_errors => "vpnmon_probe_recv_errors", "Receive errors";
    rx_queue_drops => "vpnmon_probe_rx_queue_drops", "Packets dropped by a full socket receive buffer";
    tx_timestamps => "vpnmon_probe_tx_timestamps", "Kernel transmit timestamps matched to a sent probe";
    tx_timestamp_missing => "vpnmon_probe_tx_timestamp_missing", "Replies whose RTT starts at the clock read before the send (no kernel transmit timestamp)";
    skipped => "vpnmon_probe_skipped", "Probes skipped because they were overdue after a stall";
    events_dropped => "vpnmon_probe_events_dropped", "Engine events dropped because the consumer fell behind";
    lateness_sum_us => "vpnmon_probe_send_lateness_us", "Sum of send lateness against the schedule, microseconds";
    late_over_5ms => "vpnmon_probe_sent_late_over_5ms", "Probes sent more than 5 ms after their scheduled time";
    late_over_20ms => "vpnmon_probe_sent_late_over_20ms", "Probes sent more than 20 ms after their scheduled time";
}

/// All of vpnmon's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    rtt: Family<RttLabels, FGauge>,
    loss: Family<MonitorLabels, FGauge>,
    sent: Family<MonitorLabels, Counter>,
    received: Family<MonitorLabels, Counter>,
    link_up: Family<MonitorLabels, Gauge>,
    unexported: Gauge,
    in_flight: Gauge,
    monitors: Gauge,
    not_probed: Gauge,
    unowned: Gauge,
    engine: EngineCounterSet,
    /// Background tasks (and the engine thread) that died, by name.
    pub task_failures: Family<TaskLabels, Counter>,
    /// Datapoint batch write latency.
    pub store_write_seconds: Histogram,
    /// API request metrics (passed to the router).
    pub api: Arc<api::metrics::ApiMetrics>,
    exported: Mutex<HashSet<Uuid>>,
    max_monitors: usize,
    handle: Mutex<Option<probe::EngineHandle>>,
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new(max_monitors: usize) -> Arc<Self> {
        let mut r = Registry::default();
        let rtt = Family::<RttLabels, FGauge>::default();
        r.register(
            "vpnmon_monitor_rtt_seconds",
            "Round-trip time of the monitor's last window",
            rtt.clone(),
        );
        let loss = Family::<MonitorLabels, FGauge>::default();
        r.register(
            "vpnmon_monitor_loss_ratio",
            "Packet loss (0-1) of the monitor's last window",
            loss.clone(),
        );
        let sent = Family::<MonitorLabels, Counter>::default();
        r.register(
            "vpnmon_monitor_probes_sent",
            "Echo requests sent by the monitor",
            sent.clone(),
        );
        let received = Family::<MonitorLabels, Counter>::default();
        r.register(
            "vpnmon_monitor_probes_received",
            "Echo replies received by the monitor",
            received.clone(),
        );
        let link_up = Family::<MonitorLabels, Gauge>::default();
        r.register(
            "vpnmon_monitor_link_up",
            "1 when the last window had a reply, 0 when it had none",
            link_up.clone(),
        );
        let unexported = Gauge::default();
        r.register(
            "vpnmon_monitors_unexported",
            "Monitors without per-monitor series (over --metrics-max-monitors)",
            unexported.clone(),
        );
        let in_flight = Gauge::default();
        r.register(
            "vpnmon_probe_in_flight",
            "Probes sent and awaiting a reply",
            in_flight.clone(),
        );
        let monitors = Gauge::default();
        r.register(
            "vpnmon_probe_monitors",
            "Monitors known to the probe engine",
            monitors.clone(),
        );
        let not_probed = Gauge::default();
        r.register(
            "vpnmon_probe_monitors_not_probed",
            "Monitors the engine does not probe (outside the allowlist, source address not local, ...); \
             GET /vpnmon/{project}/monitors/{id}/state says why",
            not_probed.clone(),
        );
        let unowned = Gauge::default();
        r.register(
            "vpnmon_monitors_unowned",
            "Monitors no live node can probe (no live node can send from their source address), \
             as of this node's last reconcile",
            unowned.clone(),
        );
        let engine = EngineCounterSet::new(&mut r);
        let task_failures = Family::<TaskLabels, Counter>::default();
        r.register(
            "vpnmon_task_failures",
            "Background tasks (engine thread, persist, rollups, membership, ...) that ended \
             while the node was serving; the node is then not ready (GET /readyz)",
            task_failures.clone(),
        );
        let store_write_seconds = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        ]);
        r.register(
            "vpnmon_store_write_seconds",
            "Latency of datapoint batch writes",
            store_write_seconds.clone(),
        );
        let api = api::metrics::ApiMetrics::new(&mut r);
        Arc::new(Metrics {
            registry: Mutex::new(r),
            rtt,
            loss,
            sent,
            received,
            link_up,
            unexported,
            in_flight,
            monitors,
            not_probed,
            unowned,
            engine,
            task_failures,
            store_write_seconds,
            api,
            exported: Mutex::new(HashSet::new()),
            max_monitors,
            handle: Mutex::new(None),
        })
    }

    /// Sets how many monitors no live node can probe.
    pub fn set_unowned(&self, n: usize) {
        self.unowned.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Lets the scrape read the engine's counters.
    pub fn attach_engine(&self, h: probe::EngineHandle) {
        if let Ok(mut g) = self.handle.lock() {
            *g = Some(h);
        }
    }

    fn admit(&self, id: Uuid) -> bool {
        let Ok(mut set) = self.exported.lock() else {
            return false;
        };
        if set.contains(&id) {
            return true;
        }
        if set.len() >= self.max_monitors {
            return false;
        }
        set.insert(id);
        true
    }

    /// Records a closed window. The labels are only built for a monitor
    /// that has series (most have none when there are more monitors than
    /// `--metrics-max-monitors`).
    pub fn window(&self, labels: impl FnOnce() -> MonitorLabels, id: Uuid, w: &probe::WindowStats) {
        if !self.admit(id) {
            return;
        }
        let l = &labels();
        let rtt = |stat: &'static str, v: Option<f64>| {
            let g = self.rtt.get_or_create(&RttLabels {
                project: l.project.clone(),
                vpn_connection: l.vpn_connection.clone(),
                monitor: l.monitor.clone(),
                stat,
            });
            g.set(v.map(|ms| ms / 1000.0).unwrap_or(f64::NAN));
        };
        rtt("min", w.rtt_min_ms);
        rtt("avg", w.rtt_avg_ms);
        rtt("max", w.rtt_max_ms);
        rtt("jitter", w.jitter_ms);
        self.loss.get_or_create(l).set(w.loss_pct / 100.0);
        self.sent.get_or_create(l).inc_by(u64::from(w.sent));
        self.received.get_or_create(l).inc_by(u64::from(w.received));
    }

    /// Records a link state change.
    pub fn link(&self, labels: impl FnOnce() -> MonitorLabels, id: Uuid, up: bool) {
        if self.admit(id) {
            self.link_up.get_or_create(&labels()).set(i64::from(up));
        }
    }

    /// Drops a deleted monitor's series.
    pub fn remove(&self, l: &MonitorLabels, id: Uuid) {
        if let Ok(mut set) = self.exported.lock() {
            set.remove(&id);
        }
        for stat in ["min", "avg", "max", "jitter"] {
            self.rtt.remove(&RttLabels {
                project: l.project.clone(),
                vpn_connection: l.vpn_connection.clone(),
                monitor: l.monitor.clone(),
                stat,
            });
        }
        self.loss.remove(l);
        self.sent.remove(l);
        self.received.remove(l);
        self.link_up.remove(l);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        if let Ok(h) = self.handle.lock()
            && let Some(h) = h.as_ref()
        {
            let c = h.counters();
            self.engine.update(&c);
            self.in_flight.set(c.in_flight as i64);
            self.monitors.set(c.monitors as i64);
            self.not_probed.set(c.not_probed as i64);
            let exported = self.exported.lock().map(|s| s.len()).unwrap_or(0);
            self.unexported
                .set((c.monitors as i64 - exported as i64).max(0));
        }
        let mut out = String::new();
        if let Ok(r) = self.registry.lock()
            && let Err(e) = prometheus_client::encoding::text::encode(&mut out, &r)
        {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// The `/metrics` router.
pub fn router(m: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let m = m.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.render(),
                )
            }
        }),
    )
}
