//! Prometheus exposition on its own listener (`--metrics-listen`, default
//! `127.0.0.1:9180`, `off` to disable): `GET /metrics` in the format the
//! scraper's `Accept` asks for ([`Format::negotiate`]): OpenMetrics 1.0.0
//! for Prometheus, which asks for it, and the text format 0.0.4 for
//! `text/plain`, `*/*` or no `Accept`.
//!
//! prometheus-client encodes only OpenMetrics; the text format is a
//! line-by-line conversion of that output (`text_format.rs` lists what
//! differs), so there is one registry and one set of names. Names carry base
//! units (`_seconds`, `_ratio`), every family has HELP, and both outputs pass
//! `promtool check metrics` (`tests/api/prometheus.rs`).
//!
//! Families and labels (cardinality):
//! - per monitor, labels `project`, `vpn_connection`, `monitor` (one series
//!   set per monitor, at most `--metrics-max-monitors`, default 1 000 (about 3 KB each);
//!   monitors beyond that are counted in `vpnmon_monitors_unexported`):
//!   `vpnmon_monitor_rtt_seconds{stat=min|avg|max|jitter}` (last window),
//!   `vpnmon_monitor_loss_ratio` (last window), `vpnmon_monitor_probes_sent_total`,
//!   `vpnmon_monitor_probes_received_total`, `vpnmon_monitor_link_up`;
//! - engine internals, no labels: `vpnmon_probe_*`, one per field of
//!   [`probe::EngineCounters`], named and described where the field is
//!   declared (`probe/src/counters.rs`) and read from the engine at scrape
//!   time, and `vpnmon_probe_engine_running` (0 once the engine has stopped);
//! - store writes: `vpnmon_store_write_seconds` (histogram of datapoint batch writes),
//!   `vpnmon_store_write_errors_total{what}` and
//!   `vpnmon_store_backlog_dropped_total{what}` (`what` = `datapoints` or `monitor_updates`);
//! - supervision: `vpnmon_task_failures_total{task}` (background tasks that died);
//! - ownership: `vpnmon_monitors_unowned` (monitors no live node can probe);
//! - run-once jobs: `vpnmon_node_runs_jobs` (1 on the node that runs rollups,
//!   retention and the alarm no-data check, 0 on the others);
//! - change feed: `vpnmon_monitor_feed_up` (1 while this node listens for
//!   monitors created or deleted through other nodes, PostgreSQL only);
//! - alarm rules: `vpnmon_alarm_state{project,alarm,alarm_name,vpn_connection,metric,state}`
//!   (1 for the rule's state, 0 for the others; at most `--metrics-max-monitors` rules,
//!   the rest counted in `vpnmon_alarms_unexported`), see [`alarms`];
//! - API: `vpnmon_api_requests_total{method,route,status}` and
//!   `vpnmon_api_request_duration_seconds{method,route}` (route templates such as
//!   `/v5/:project_id/connection-monitors`).

pub mod alarms;
mod negotiation;
mod text_format;

pub use negotiation::Format;

use axum::http::{HeaderMap, StatusCode, header};
use probe::{CounterKind, CounterUnit};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
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

/// Labels of the RTT gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RttLabels {
    pub project: String,
    pub vpn_connection: String,
    pub monitor: String,
    pub stat: &'static str,
}

type FGauge = Gauge<f64, AtomicU64>;

/// The engine's counters ([`probe::EngineCounters::SPECS`]) and whether it
/// runs, read from the engine at each scrape; zero until an engine is
/// attached (`--no-probe` or before start), so the families are always there.
#[derive(Debug, Default)]
struct EngineCollector {
    handle: Arc<Mutex<Option<probe::EngineHandle>>>,
}

impl EngineCollector {
    /// The counters, and whether the engine thread runs.
    fn snapshot(&self) -> (probe::EngineCounters, bool) {
        match self.handle.lock() {
            Ok(h) => h
                .as_ref()
                .map(|h| (h.counters(), h.is_running()))
                .unwrap_or_default(),
            Err(_) => Default::default(),
        }
    }
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (counters, running) = self.snapshot();
        // The counters of a stopped engine stay at their last values; this
        // tells a stopped engine from an idle one.
        let metric = encoder.encode_descriptor(
            "vpnmon_probe_engine_running",
            "1 while the probe engine thread runs, 0 when it has stopped or never started (--no-probe).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(running)).encode(metric)?;
        for (spec, v) in counters.values() {
            let name = format!("vpnmon_probe_{}", spec.name);
            let kind = match spec.kind {
                CounterKind::Total => MetricType::Counter,
                CounterKind::Gauge => MetricType::Gauge,
            };
            // Registry::register ends every help with a full stop; so do we.
            let help = format!("{}.", spec.help);
            let metric = encoder.encode_descriptor(&name, &help, None, kind)?;
            match (spec.kind, spec.unit) {
                (CounterKind::Total, CounterUnit::Count) => ConstCounter::new(v).encode(metric)?,
                (CounterKind::Total, unit) => ConstCounter::new(unit.to_base(v)).encode(metric)?,
                (CounterKind::Gauge, CounterUnit::Count) => ConstGauge::new(v).encode(metric)?,
                (CounterKind::Gauge, unit) => ConstGauge::new(unit.to_base(v)).encode(metric)?,
            }
        }
        Ok(())
    }
}

/// Labels of the task failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub task: &'static str,
}

/// What a store write was for.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `datapoints` or `monitor_updates`.
    pub what: &'static str,
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
    unowned: Gauge,
    runs_jobs: Gauge,
    feed_up: Gauge,
    /// Background tasks (and the engine thread) that died, by name.
    pub task_failures: Family<TaskLabels, Counter>,
    /// Datapoint batch write latency.
    pub store_write_seconds: Histogram,
    /// Failed store writes of the probe glue, by what they were for.
    pub store_write_errors: Family<WriteLabels, Counter>,
    /// Items dropped because the write backlog was full (the store kept failing).
    pub store_backlog_dropped: Family<WriteLabels, Counter>,
    /// API request metrics (passed to the router).
    pub api: Arc<api::prometheus::ApiMetrics>,
    /// `vpnmon_alarm_state`, refreshed from the store ([`alarms::refresh`]).
    pub alarm_states: alarms::AlarmStates,
    exported: Mutex<HashSet<Uuid>>,
    max_monitors: usize,
    handle: Arc<Mutex<Option<probe::EngineHandle>>>,
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
        let unowned = Gauge::default();
        r.register(
            "vpnmon_monitors_unowned",
            "Monitors no live node can probe (no live node can send from their source address), \
             as of this node's last reconcile",
            unowned.clone(),
        );
        let runs_jobs = Gauge::default();
        r.register(
            "vpnmon_node_runs_jobs",
            "1 while this node runs the run-once jobs (rollups, retention, the alarm rules' \
             no-data check: the oldest live node holding its lease), 0 otherwise",
            runs_jobs.clone(),
        );
        let feed_up = Gauge::default();
        r.register(
            "vpnmon_monitor_feed_up",
            "1 while this node listens for monitors created or deleted through any node \
             (PostgreSQL LISTEN); 0 while it cannot (it reads every monitor again once it can)",
            feed_up.clone(),
        );
        let task_failures = Family::<TaskLabels, Counter>::default();
        r.register(
            "vpnmon_task_failures",
            "Background tasks (engine thread, persist, rollups, membership, ...) that ended \
             while the node was serving; the node is then not ready (GET /readyz)",
            task_failures.clone(),
        );
        let handle = Arc::new(Mutex::new(None));
        r.register_collector(Box::new(EngineCollector {
            handle: handle.clone(),
        }));
        let alarm_states = alarms::AlarmStates::default();
        r.register_collector(Box::new(alarm_states.clone()));
        let store_write_seconds = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        ]);
        r.register(
            "vpnmon_store_write_seconds",
            "Latency of datapoint batch writes",
            store_write_seconds.clone(),
        );
        let store_write_errors = Family::<WriteLabels, Counter>::default();
        r.register(
            "vpnmon_store_write_errors",
            "Failed store writes of probe results (datapoints, monitor updates); retried",
            store_write_errors.clone(),
        );
        let store_backlog_dropped = Family::<WriteLabels, Counter>::default();
        r.register(
            "vpnmon_store_backlog_dropped",
            "Probe results dropped because the write backlog was full while the store failed",
            store_backlog_dropped.clone(),
        );
        let api = api::prometheus::ApiMetrics::new(&mut r);
        Arc::new(Metrics {
            registry: Mutex::new(r),
            rtt,
            loss,
            sent,
            received,
            link_up,
            unexported,
            unowned,
            runs_jobs,
            feed_up,
            task_failures,
            store_write_seconds,
            store_write_errors,
            store_backlog_dropped,
            api,
            alarm_states,
            exported: Mutex::new(HashSet::new()),
            max_monitors,
            handle,
        })
    }

    /// Sets how many monitors no live node can probe.
    pub fn set_unowned(&self, n: usize) {
        self.unowned.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets whether this node runs the run-once jobs.
    pub fn set_runs_jobs(&self, leads: bool) {
        self.runs_jobs.set(i64::from(leads));
    }

    /// Sets whether this node hears of monitor changes through other nodes.
    pub fn set_feed_up(&self, up: bool) {
        self.feed_up.set(i64::from(up));
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

    /// The exposition in `format`.
    pub fn render(&self, format: Format) -> Result<String, RenderError> {
        if let Ok(h) = self.handle.lock()
            && let Some(h) = h.as_ref()
        {
            let monitors = h.counters().monitors;
            let exported = self.exported.lock().map(|s| s.len()).unwrap_or(0);
            self.unexported
                .set(monitors.saturating_sub(exported as u64) as i64);
        }
        let mut om = String::new();
        {
            let r = self.registry.lock().map_err(|_| RenderError::Poisoned)?;
            prometheus_client::encoding::text::encode(&mut om, &r)
                .map_err(|_| RenderError::Encode)?;
        }
        match format {
            Format::OpenMetrics => Ok(om),
            Format::Text => text_format::from_openmetrics(&om).map_err(RenderError::Convert),
        }
    }
}

/// Why a scrape could not be answered (all are bugs; the scrape gets a 500
/// and the log the reason).
#[derive(Debug)]
pub enum RenderError {
    /// A thread panicked while holding the registry.
    Poisoned,
    /// prometheus-client failed to encode.
    Encode,
    /// The OpenMetrics output did not convert to text format 0.0.4.
    Convert(text_format::ConvertError),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Poisoned => f.write_str("metrics registry lock poisoned"),
            RenderError::Encode => f.write_str("cannot encode metrics"),
            RenderError::Convert(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RenderError {}

/// The `/metrics` router: the format the scraper's `Accept` asks for
/// ([`Format::negotiate`]), `Vary: Accept` so caches keep them apart.
pub fn router(m: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: HeaderMap| {
            let m = m.clone();
            async move {
                let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                let format = Format::negotiate(accept);
                match m.render(format) {
                    Ok(body) => (
                        StatusCode::OK,
                        [
                            (header::CONTENT_TYPE, format.content_type()),
                            (header::VARY, "Accept"),
                        ],
                        body,
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot render metrics");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            [
                                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                                (header::VARY, "Accept"),
                            ],
                            "cannot render metrics\n".to_string(),
                        )
                    }
                }
            }
        }),
    )
}

impl Metrics {
    /// Registers more metrics in the same registry (e.g. the login
    /// protection's, which the API state owns).
    pub fn register_more(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock().unwrap());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn with_one_monitor() -> Arc<Metrics> {
        let m = Metrics::new(10);
        let id = Uuid::nil();
        let labels = || MonitorLabels {
            project: "p".into(),
            vpn_connection: "c".into(),
            monitor: id.to_string(),
        };
        m.window(
            labels,
            id,
            &probe::WindowStats {
                id,
                window_start: std::time::SystemTime::UNIX_EPOCH,
                sent: 3,
                received: 2,
                loss_pct: 100.0 / 3.0,
                rtt_min_ms: Some(1.0),
                rtt_avg_ms: Some(2.0),
                rtt_max_ms: Some(3.0),
                jitter_ms: None,
            },
        );
        m.link(labels, id, true);
        m.store_write_seconds.observe(0.002);
        m
    }

    /// `# HELP`/`# TYPE` per family name, and the sample names.
    struct Parsed {
        help: BTreeMap<String, String>,
        kind: BTreeMap<String, String>,
        samples: Vec<(String, String)>,
    }

    fn parse(text: &str) -> Parsed {
        let mut p = Parsed {
            help: BTreeMap::new(),
            kind: BTreeMap::new(),
            samples: Vec::new(),
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (n, h) = rest.split_once(' ').unwrap();
                assert!(p.help.insert(n.into(), h.into()).is_none(), "{line}");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (n, t) = rest.split_once(' ').unwrap();
                assert!(p.kind.insert(n.into(), t.into()).is_none(), "{line}");
            } else {
                assert!(!line.starts_with('#'), "unexpected comment {line:?}");
                let name = line.split(['{', ' ']).next().unwrap();
                let value = line.rsplit(' ').next().unwrap();
                p.samples.push((name.into(), value.into()));
            }
        }
        p
    }

    /// The family a 0.0.4 sample belongs to: its own name, or for histogram
    /// series the name without the suffix.
    fn family_of<'a>(p: &Parsed, sample: &'a str) -> &'a str {
        if p.kind.contains_key(sample) {
            return sample;
        }
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| sample.strip_suffix(s))
            .filter(|f| p.kind.get(*f).map(String::as_str) == Some("histogram"))
            .unwrap_or(sample)
    }

    #[test]
    fn text_format_has_help_and_type_for_every_sample_and_no_eof() {
        let m = with_one_monitor();
        let text = m.render(Format::Text).unwrap();
        assert!(!text.contains("# EOF"), "{text}");
        let p = parse(&text);
        assert!(!p.samples.is_empty());
        for (sample, _) in &p.samples {
            let family = family_of(&p, sample);
            assert!(p.kind.contains_key(family), "{sample}: no TYPE");
            assert!(p.help.contains_key(family), "{sample}: no HELP");
        }
        for (name, kind) in &p.kind {
            assert_eq!(
                name.ends_with("_total"),
                kind == "counter",
                "{name} is a {kind}"
            );
            assert!(p.help.contains_key(name), "{name}: TYPE without HELP");
        }
    }

    #[test]
    fn names_are_in_base_units_and_help_needs_no_escaping() {
        let m = with_one_monitor();
        let p = parse(&m.render(Format::Text).unwrap());
        // promtool's list of abbreviated units, as name components.
        let abbreviated = [
            "s", "ms", "us", "ns", "sec", "min", "hr", "hrs", "kb", "mb", "gb", "b", "kib", "mib",
            "gib", "pct", "percent", "milli", "micro", "nano",
        ];
        for (name, help) in &p.help {
            for token in name.split('_') {
                assert!(!abbreviated.contains(&token), "{name}: unit {token}");
            }
            assert!(!help.is_empty(), "{name}");
            assert!(!help.contains(['\\', '\n']), "{name}: {help}");
        }
        assert!(
            p.kind
                .contains_key("vpnmon_probe_send_lateness_seconds_total")
        );
        assert!(!p.help.keys().any(|n| n.contains("_us")));
    }

    #[test]
    fn every_engine_counter_is_exported_once_under_its_declared_name() {
        let m = with_one_monitor();
        let p = parse(&m.render(Format::Text).unwrap());
        for spec in probe::EngineCounters::SPECS {
            let name = match spec.kind {
                CounterKind::Total => format!("vpnmon_probe_{}_total", spec.name),
                CounterKind::Gauge => format!("vpnmon_probe_{}", spec.name),
            };
            assert_eq!(p.help.get(&name), Some(&format!("{}.", spec.help)));
            let n = p.samples.iter().filter(|(s, _)| *s == name).count();
            assert_eq!(n, 1, "{name}");
        }
    }

    #[test]
    fn both_formats_carry_the_same_samples() {
        let m = with_one_monitor();
        let om = m.render(Format::OpenMetrics).unwrap();
        assert!(om.ends_with("# EOF\n"));
        let text = parse(&m.render(Format::Text).unwrap()).samples;
        let om: Vec<_> = om
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let name = l.split(['{', ' ']).next().unwrap();
                (name.to_string(), l.rsplit(' ').next().unwrap().to_string())
            })
            .collect();
        assert_eq!(text, om);
        let value = |name: &str| {
            text.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value("vpnmon_monitor_probes_sent_total"), Some("3"));
        assert_eq!(value("vpnmon_monitor_link_up"), Some("1"));
        assert_eq!(value("vpnmon_store_write_seconds_count"), Some("1"));
        assert_eq!(
            value("vpnmon_probe_send_lateness_seconds_total"),
            Some("0.0")
        );
    }
}
