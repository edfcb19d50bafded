//! The engine's counters, each declared once.
//!
//! One line of [`engine_counters!`] per counter gives its field, its kind
//! (a total since start or a current level), the unit the engine counts
//! in, the name an exporter publishes it under and its help text. From that
//! line come the field of [`EngineCounters`] (documented with the help), its
//! atomic twin in the engine's shared block, the copy in both directions,
//! and its entry in [`EngineCounters::SPECS`], which is all an exporter
//! reads. Adding a counter is adding a line; nothing is matched by position.
//!
//! Names are suffixes: vpnmon exports them as `vpnmon_probe_<name>`, with
//! `_total` on totals as the exposition formats require, and values in the
//! base unit of the name ([`CounterUnit::to_base`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a counter only grows or is a current level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterKind {
    /// A total since the engine started (a Prometheus counter).
    Total,
    /// A current level (a Prometheus gauge).
    Gauge,
}

/// The unit the engine counts a value in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterUnit {
    /// Events or things; no unit.
    Count,
    /// Microseconds; exported in seconds.
    Microseconds,
}

impl CounterUnit {
    /// The value in the base unit its exported name carries (seconds for
    /// times).
    pub fn to_base(self, v: u64) -> f64 {
        match self {
            CounterUnit::Count => v as f64,
            CounterUnit::Microseconds => v as f64 / 1e6,
        }
    }
}

/// What one field of [`EngineCounters`] is, for exporters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterSpec {
    /// The field's name in [`EngineCounters`].
    pub field: &'static str,
    /// The exported name's suffix (after `vpnmon_probe_`, before `_total`),
    /// in base units.
    pub name: &'static str,
    /// One-line help text, also the field's documentation.
    pub help: &'static str,
    /// Total or level.
    pub kind: CounterKind,
    /// The unit of the field's value.
    pub unit: CounterUnit,
}

macro_rules! engine_counters {
    ($($field:ident: $kind:ident $unit:ident $name:literal, $help:literal;)*) => {
        /// A snapshot of the engine's counters: totals since start and a few
        /// current levels (see [`EngineCounters::SPECS`] for which is which).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct EngineCounters {
            $(
                #[doc = $help]
                #[doc = ""]
                #[doc = concat!(
                    "Kind: ", stringify!($kind), "; unit: ", stringify!($unit),
                    "; exported as `vpnmon_probe_", $name, "`."
                )]
                pub $field: u64,
            )*
        }

        impl EngineCounters {
            /// Every counter's description, in declaration order.
            pub const SPECS: &'static [CounterSpec] = &[$(
                CounterSpec {
                    field: stringify!($field),
                    name: $name,
                    help: $help,
                    kind: CounterKind::$kind,
                    unit: CounterUnit::$unit,
                },
            )*];

            /// Every value with its description, in the order of [`Self::SPECS`].
            pub fn values(&self) -> impl Iterator<Item = (&'static CounterSpec, u64)> {
                Self::SPECS.iter().zip([$(self.$field),*])
            }
        }

        /// The counters shared with handles: plain atomics, written once per
        /// engine loop.
        #[derive(Debug, Default)]
        pub(crate) struct SharedCounters {
            $($field: AtomicU64,)*
        }

        impl SharedCounters {
            pub(crate) fn publish(&self, c: &EngineCounters) {
                $(self.$field.store(c.$field, Ordering::Relaxed);)*
            }

            pub(crate) fn snapshot(&self) -> EngineCounters {
                EngineCounters {
                    $($field: self.$field.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

engine_counters! {
    sent: Total Count "sent", "Echo requests sent";
    received: Total Count "received", "Echo replies matched to an outstanding probe";
    timeouts: Total Count "timeouts", "Probes without a reply within the timeout";
    unmatched: Total Count "unmatched_replies", "Echo replies that are not ours or do not fit what we sent (other programs' pings, wrong source, forged or corrupted tokens)";
    malformed: Total Count "malformed_packets", "Packets that could not be parsed (truncated, bad header, checksum)";
    duplicates: Total Count "duplicate_replies", "Second and later replies to one probe";
    late: Total Count "late_replies", "Replies after the timeout, after the window closed, or after the monitor was removed or changed";
    send_errors: Total Count "send_errors", "Sends the kernel refused (each probe at most once)";
    recv_errors: Total Count "recv_errors", "Receive errors other than nothing to read";
    rx_queue_drops: Total Count "rx_queue_drops", "Packets the kernel dropped because a probe socket's receive buffer was full (SO_RXQ_OVFL); non-zero means loss may be our own";
    skipped: Total Count "skipped", "Probes skipped because they were overdue after a stall";
    rx_timestamp_missing: Total Count "rx_timestamp_missing", "Replies without a kernel receive timestamp (receive time read in userspace)";
    tx_timestamps: Total Count "tx_timestamps", "Kernel transmit timestamps matched to a sent probe";
    tx_timestamp_missing: Total Count "tx_timestamp_missing", "Replies whose RTT starts at the clock read before the send (no kernel transmit timestamp)";
    events_dropped: Total Count "events_dropped", "Engine events dropped because the consumer fell behind";
    wakeups: Total Count "wakeups", "Times the engine thread woke up (its main CPU cost at low rates)";
    in_flight: Gauge Count "in_flight", "Probes sent and awaiting a reply";
    monitors: Gauge Count "monitors", "Monitors known to the probe engine";
    not_probed: Gauge Count "monitors_not_probed", "Monitors the engine does not probe (outside the allowlist, source address not local, ...); GET /vpnmon/{project}/monitors/{id}/state says why";
    lateness_sum_us: Total Microseconds "send_lateness_seconds", "Sum over sent probes of how late each was queued for sending against its schedule (divide by vpnmon_probe_sent_total for the mean)";
    late_over_5ms: Total Count "sent_late_over_5ms", "Probes sent more than 5 ms after their scheduled time";
    late_over_20ms: Total Count "sent_late_over_20ms", "Probes sent more than 20 ms after their scheduled time";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered() -> EngineCounters {
        let shared = SharedCounters::default();
        // Give every atomic a distinct value through the generated copy.
        let mut c = EngineCounters::default();
        for (i, spec) in EngineCounters::SPECS.iter().enumerate() {
            set(&mut c, spec.field, i as u64 + 1);
        }
        shared.publish(&c);
        shared.snapshot()
    }

    // By name, independent of the macro, so a field the macro wires to the
    // wrong atomic shows up.
    fn set(c: &mut EngineCounters, field: &str, v: u64) {
        let slot = match field {
            "sent" => &mut c.sent,
            "received" => &mut c.received,
            "timeouts" => &mut c.timeouts,
            "unmatched" => &mut c.unmatched,
            "malformed" => &mut c.malformed,
            "duplicates" => &mut c.duplicates,
            "late" => &mut c.late,
            "send_errors" => &mut c.send_errors,
            "recv_errors" => &mut c.recv_errors,
            "rx_queue_drops" => &mut c.rx_queue_drops,
            "skipped" => &mut c.skipped,
            "rx_timestamp_missing" => &mut c.rx_timestamp_missing,
            "tx_timestamps" => &mut c.tx_timestamps,
            "tx_timestamp_missing" => &mut c.tx_timestamp_missing,
            "events_dropped" => &mut c.events_dropped,
            "wakeups" => &mut c.wakeups,
            "in_flight" => &mut c.in_flight,
            "monitors" => &mut c.monitors,
            "not_probed" => &mut c.not_probed,
            "lateness_sum_us" => &mut c.lateness_sum_us,
            "late_over_5ms" => &mut c.late_over_5ms,
            "late_over_20ms" => &mut c.late_over_20ms,
            other => panic!("unknown field {other}"),
        };
        *slot = v;
    }

    #[test]
    fn publish_then_snapshot_keeps_every_field_in_place() {
        let c = numbered();
        assert_eq!(c.sent, 1);
        assert_eq!(c.late_over_20ms, EngineCounters::SPECS.len() as u64);
        for (i, (spec, v)) in c.values().enumerate() {
            assert_eq!(v, i as u64 + 1, "{}", spec.field);
        }
    }

    #[test]
    fn specs_cover_every_field_once_with_unique_names() {
        assert_eq!(EngineCounters::SPECS.len(), 22);
        let mut names: Vec<_> = EngineCounters::SPECS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EngineCounters::SPECS.len());
    }

    #[test]
    fn gauges_are_the_three_levels() {
        let gauges: Vec<_> = EngineCounters::SPECS
            .iter()
            .filter(|s| s.kind == CounterKind::Gauge)
            .map(|s| s.field)
            .collect();
        assert_eq!(gauges, ["in_flight", "monitors", "not_probed"]);
    }

    #[test]
    fn microseconds_export_in_seconds() {
        assert_eq!(CounterUnit::Microseconds.to_base(1_500_000), 1.5);
        assert_eq!(CounterUnit::Count.to_base(7), 7.0);
        let lateness = EngineCounters::SPECS
            .iter()
            .find(|s| s.field == "lateness_sum_us")
            .map(|s| (s.name, s.unit));
        assert_eq!(
            lateness,
            Some(("send_lateness_seconds", CounterUnit::Microseconds))
        );
    }
}
