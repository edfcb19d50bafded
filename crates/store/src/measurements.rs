//! Measurements: raw window datapoints and their rollups, for the metric APIs.
//!
//! A rollup bucket keeps, per metric, the count, sum, sum of squares, min
//! and max of the per-window values, so CES's `average`, `sum`, `min`,
//! `max` and `variance` filters are exact for any bucket. Buckets are
//! aligned to the period (epoch-based, as CES aligns `from`). Each period
//! has a watermark: everything before it is rolled up, exactly once.

use domain::alarm::{Filter, Measure};
use domain::{MonitorId, ProjectId};

/// Periods (seconds) that are rolled up, shortest first (the raw window
/// itself is CES's period 1); declared with the retention levels in
/// [`domain::retention`].
pub use domain::retention::ROLLUP_PERIODS;

/// Count, sum, sum of squares, min, max of some per-window values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Agg {
    pub n: i64,
    pub sum: f64,
    pub sumsq: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Agg {
    /// Mean, when there is a value.
    pub fn average(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
    /// Population variance, when there is a value.
    pub fn variance(&self) -> Option<f64> {
        self.average()
            .map(|m| (self.sumsq / self.n as f64 - m * m).max(0.0))
    }
    /// The value CES's `filter` gives for these values (none without one).
    pub fn filtered(&self, filter: Filter) -> Option<f64> {
        match filter {
            Filter::Average => self.average(),
            Filter::Max => self.max,
            Filter::Min => self.min,
            Filter::Sum => (self.n > 0).then_some(self.sum),
            Filter::Variance => self.variance(),
        }
    }
}

/// One rolled-up bucket of one monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub monitor_id: MonitorId,
    pub period: i64,
    pub bucket_ms: i64,
    pub windows: i64,
    pub sent: i64,
    pub received: i64,
    /// Per-window average RTT (windows with a reply).
    pub latency: Agg,
    /// Per-window max RTT.
    pub max_latency: Agg,
    /// Per-window loss %.
    pub loss: Agg,
}

impl Rollup {
    /// The per-window values of `measure` in this bucket.
    pub fn of(&self, measure: Measure) -> &Agg {
        match measure {
            Measure::Latency => &self.latency,
            Measure::MaxLatency => &self.max_latency,
            Measure::Loss => &self.loss,
        }
    }
}

/// One probe window's statistics for one monitor (a raw datapoint).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowPoint {
    pub monitor_id: MonitorId,
    pub project_id: ProjectId,
    pub window_start_ms: i64,
    pub sent: i64,
    pub received: i64,
    pub loss_pct: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
}

/// What retention removed from one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Rows deleted one by one.
    pub rows: u64,
    /// Whole time partitions dropped (PostgreSQL).
    pub partitions: u64,
}
