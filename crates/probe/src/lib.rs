//! `probe`: the ICMP engine of vpnmon. It sends echo requests from each
//! connection monitor's source address to its destination, matches the
//! replies, and reports per-window statistics, link state changes and the
//! reasons a monitor cannot be probed. It knows nothing of HTTP or SQL: the
//! binary feeds it [`MonitorSpec`]s and stores the [`ProbeEvent`]s it emits.
//!
//! # Design
//!
//! - **One thread, one socket per family.** [`Engine::start`] opens one
//!   ICMP socket per address family and starts one task that owns every
//!   monitor, on a thread of its own with a single-threaded runtime, so a
//!   wake-up is one `epoll_wait` and never a hand-over between the worker
//!   threads of the application's runtime, and a busy API never delays a
//!   send.
//!   There is no task, socket, timer or allocation per monitor or per probe:
//!   per-target sockets cost O(N²) packet copies on raw sockets (every raw
//!   socket sees every reply) and per-target tasks cost a wake-up per probe,
//!   the two failure modes of liboping, smokeping_prober and go-fastping.
//! - **Raw, else datagram.** Raw sockets when the process has `CAP_NET_RAW`,
//!   otherwise ICMP datagram ("ping") sockets where
//!   `net.ipv4.ping_group_range` allows them; when neither works,
//!   [`ProbeError::NoPermission`] names both remedies. See [`socket`].
//! - **Paced, batched sends.** Time advances in ticks (5 ms by default). Each
//!   tick, every probe that is due goes out through `sendmmsg` in batches
//!   of up to 32, each with its own `IP_PKTINFO`/`IPV6_PKTINFO` source
//!   address (IPv4 with DF set).
//!   Wake-ups, not packets, dominate the CPU cost at low rates, so the
//!   engine does not wake per reply: replies carry kernel timestamps and are
//!   drained on the next tick (readability wakes the engine only when no
//!   tick is imminent, or when the kernel granted a small receive buffer);
//!   and at low probe rates it lets a few due probes gather (at most 20 ms)
//!   before waking, instead of waking on every busy tick.
//!   Monitors are spread over the window by a hash of their id, and a probe
//!   that is due longer ago than [`EngineConfig::max_lateness`] (after a
//!   stall) is skipped and counted instead of sent in a burst. See
//!   [`scheduler`].
//! - **Kernel timestamps both ways.** `SO_TIMESTAMPNS` stamps each reply
//!   when the kernel receives it; `SO_TIMESTAMPING` (software transmit
//!   stamps) stamps each echo request when the device takes it, and the
//!   engine reads those stamps off the socket's error queue before the
//!   replies, matching each to its probe by the token in the returned
//!   packet. RTT therefore excludes our own scheduling delay and the
//!   kernel's work on the other packets of a send batch; where a device
//!   gives no transmit stamp, the clock read right before the batch is the
//!   send time (counted as `tx_timestamp_missing`). CLOCK_REALTIME
//!   is what the kernel offers for these stamps (fping makes the same
//!   choice); a clock step during a probe's flight can distort one RTT, and
//!   a step backwards makes that reply count as late rather than produce a
//!   negative RTT.
//! - **Matching by token.** Each echo payload carries a magic, a random
//!   per-engine tag, the monitor's slot and slot generation, the probe index
//!   and the send time ([`codec`]). This works for datagram sockets, whose
//!   identifier the kernel rewrites, and tells apart replies for other
//!   programs, duplicates and late replies, which are counted
//!   ([`EngineCounters`]) and never credited.
//! - **Compact state.** A monitor costs one slot in a vector, one intrusive
//!   timing-wheel link and `count` probe records, about 200 bytes in all, so
//!   100 000 monitors fit in some 20 MB (see `monitors.rs`).
//! - **Honest numbers.** A monitor whose destination is outside
//!   [`EngineConfig::allow`], whose source address is not local, or whose
//!   family cannot be probed yields [`ProbeEvent::NotProbed`] and sends
//!   nothing; a window in which nothing was sent yields no statistics.
//!
//! # Semantics of a window
//!
//! Probe `k` of a window leaves `k × interval / count` after the window's
//! start; the window closes `timeout` after its last probe left. A reply is
//! counted when it arrives within `timeout` of its probe's send time. A
//! probe the kernel refuses for lack of a route or by firewall policy
//! (`ENETUNREACH`, `EHOSTUNREACH`, `EPERM`, ...) counts as sent and lost, as
//! `ping` counts it; a probe refused for a local reason (no buffer space,
//! source address gone) counts as not sent. Link state: down after a window with probes and no reply, up
//! after a window with any reply; the first closed window always reports the
//! initial state.

#![warn(missing_docs)]

pub mod codec;
mod counters;
mod engine;
mod monitors;
pub mod scheduler;
pub mod socket;
pub mod stats;

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use uuid::Uuid;

pub use codec::Family;
pub use counters::{CounterKind, CounterSpec, CounterUnit, EngineCounters};
pub use engine::{Engine, EngineHandle, SocketInfo};
pub use socket::{SocketKind, SocketMode};

/// Largest echo payload accepted: an IPv6 minimum-MTU packet (1280 bytes)
/// minus IPv6 and ICMPv6 headers, so no probe is ever fragmented.
pub const MAX_PAYLOAD: usize = 1232;

/// Engine configuration. Build it with struct update syntax from
/// [`EngineConfig::default`].
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Window length; each monitor sends `count` probes per window.
    pub interval: Duration,
    /// Probes per window (1..=64).
    pub count: u32,
    /// How long a probe waits for its reply. Must leave room before the
    /// next window: `timeout + tick < interval / count`.
    pub timeout: Duration,
    /// Echo payload bytes after the 8-byte ICMP header
    /// ([`codec::TOKEN_LEN`]..=[`MAX_PAYLOAD`]).
    pub payload_size: usize,
    /// Destinations that may be probed; empty = all. Enforced before any
    /// packet is sent.
    pub allow: Vec<ipnet::IpNet>,
    /// Scheduling granularity (1 ms..=100 ms): every probe due within a tick
    /// is sent in one wake-up.
    pub tick: Duration,
    /// A probe due longer ago than this (after a stall of the process or
    /// host) is skipped and counted rather than sent late in a burst.
    pub max_lateness: Duration,
    /// Which kind of ICMP socket to open.
    pub socket_mode: SocketMode,
}

impl Default for EngineConfig {
    /// The reference service's cadence: 3 probes per 10 s, 1 s timeout,
    /// 56-byte payload (as `ping`), every destination allowed.
    fn default() -> Self {
        EngineConfig {
            interval: Duration::from_secs(10),
            count: 3,
            timeout: Duration::from_secs(1),
            payload_size: 56,
            allow: Vec::new(),
            tick: Duration::from_millis(5),
            max_lateness: Duration::from_millis(50),
            socket_mode: SocketMode::Auto,
        }
    }
}

impl EngineConfig {
    /// Check the configuration; [`Engine::start`] does this first.
    pub fn validate(&self) -> Result<(), ProbeError> {
        let invalid = |msg: String| Err(ProbeError::InvalidConfig(msg));
        if self.tick < Duration::from_millis(1) || self.tick > Duration::from_millis(100) {
            return invalid(format!("tick {:?} is outside 1ms..=100ms", self.tick));
        }
        if !(1..=64).contains(&self.count) {
            return invalid(format!("count {} is outside 1..=64", self.count));
        }
        if self.timeout.is_zero() {
            return invalid("timeout must be positive".into());
        }
        if self.interval < self.tick * self.count {
            return invalid(format!(
                "interval {:?} is too short for {} probes at a {:?} tick",
                self.interval, self.count, self.tick
            ));
        }
        let spacing = self.interval / self.count;
        if self.timeout + self.tick >= spacing {
            return invalid(format!(
                "timeout {:?} plus one tick must be shorter than the probe spacing \
                 (interval / count = {:?}), so a window closes before the next begins",
                self.timeout, spacing
            ));
        }
        if !(codec::TOKEN_LEN..=MAX_PAYLOAD).contains(&self.payload_size) {
            return invalid(format!(
                "payload size {} is outside {}..={}",
                self.payload_size,
                codec::TOKEN_LEN,
                MAX_PAYLOAD
            ));
        }
        if self.max_lateness < self.tick {
            return invalid(format!(
                "max_lateness {:?} is shorter than one tick {:?}",
                self.max_lateness, self.tick
            ));
        }
        Ok(())
    }

    /// Whether `destination` may be probed.
    pub fn allows(&self, destination: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&destination))
    }
}

/// One connection monitor as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MonitorSpec {
    /// The monitor's id; the key for [`EngineHandle::upsert`] and
    /// [`EngineHandle::remove`].
    pub id: Uuid,
    /// Address to send from (the VPN gateway's address); must be local.
    pub source: IpAddr,
    /// Address to probe (the customer gateway).
    pub destination: IpAddr,
    /// The monitor was probed before (by this node or another): it goes on
    /// from the window in progress, with the probes still ahead of it, so a
    /// node that takes it over leaves no gap to the next window boundary.
    /// A new monitor starts at its next window.
    pub resume: bool,
}

/// What the engine reports.
#[derive(Clone, Debug, PartialEq)]
pub enum ProbeEvent {
    /// The monitor's first probe has left (once per monitor).
    FirstProbeSent {
        /// Monitor id.
        id: Uuid,
    },
    /// Statistics of one closed window in which probes were sent.
    Window(WindowStats),
    /// The link state was determined for the first time, or changed.
    LinkChanged {
        /// Monitor id.
        id: Uuid,
        /// Up after a window with any reply, down after one with none.
        up: bool,
        /// When the change was determined (the window's close).
        at: SystemTime,
    },
    /// The monitor is not probed, and why. Emitted when that becomes the
    /// case; a later [`ProbeEvent::Window`] means probing (re)started.
    NotProbed {
        /// Monitor id.
        id: Uuid,
        /// Why.
        reason: NotProbedReason,
    },
}

/// Why a monitor is not probed. `Display` gives an operator-facing sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotProbedReason {
    /// The destination is outside the configured allowlist.
    DestinationNotAllowed {
        /// The destination.
        destination: IpAddr,
    },
    /// The source address is not an address of this host (namespace).
    /// Rechecked once per window; probing starts when it becomes local.
    SourceNotLocal {
        /// The source.
        source: IpAddr,
    },
    /// Source and destination are of different families.
    FamilyMismatch {
        /// The source.
        source: IpAddr,
        /// The destination.
        destination: IpAddr,
    },
    /// No ICMP socket of this family could be opened.
    FamilyUnavailable {
        /// The family.
        family: Family,
        /// Why the socket could not be opened.
        detail: String,
    },
    /// An address that cannot be probed from or to (unspecified, multicast,
    /// broadcast, IPv6 link-local without an interface).
    UnusableAddress {
        /// The address.
        address: IpAddr,
        /// Why.
        why: &'static str,
    },
    /// Checking whether the source is local failed unexpectedly; retried
    /// once per window.
    SourceCheckFailed {
        /// The source.
        source: IpAddr,
        /// The error.
        detail: String,
    },
}

impl fmt::Display for NotProbedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotProbedReason::DestinationNotAllowed { destination } => write!(
                f,
                "destination {destination} is outside the probe allowlist (--probe-allow)"
            ),
            NotProbedReason::SourceNotLocal { source } => write!(
                f,
                "source address {source} is not an address of this host; probes are not \
                 sent from another address"
            ),
            NotProbedReason::FamilyMismatch {
                source,
                destination,
            } => write!(
                f,
                "source {source} and destination {destination} are of different address families"
            ),
            NotProbedReason::FamilyUnavailable { family, detail } => {
                write!(f, "{family} probing is unavailable: {detail}")
            }
            NotProbedReason::UnusableAddress { address, why } => {
                write!(f, "address {address} cannot be probed: {why}")
            }
            NotProbedReason::SourceCheckFailed { source, detail } => {
                write!(f, "could not check source address {source}: {detail}")
            }
        }
    }
}

/// Statistics of one monitor over one window.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowStats {
    /// Monitor id.
    pub id: Uuid,
    /// Scheduled start of the window (its first probe).
    pub window_start: SystemTime,
    /// Probes sent (including those the network refused: no route, firewall).
    pub sent: u32,
    /// Probes answered within the timeout.
    pub received: u32,
    /// (sent − received) / sent × 100.
    pub loss_pct: f64,
    /// Smallest RTT, ms.
    pub rtt_min_ms: Option<f64>,
    /// Mean RTT, ms.
    pub rtt_avg_ms: Option<f64>,
    /// Largest RTT, ms.
    pub rtt_max_ms: Option<f64>,
    /// Mean absolute difference of consecutive RTTs (in probe order), ms;
    /// needs two replies.
    pub jitter_ms: Option<f64>,
}

/// Errors of [`Engine::start`].
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The configuration is unusable.
    #[error("invalid probe configuration: {0}")]
    InvalidConfig(String),
    /// Neither raw nor datagram ICMP sockets are permitted.
    #[error(
        "cannot open ICMP sockets: {detail}. Remedies: run vpnmon as root or grant it \
         CAP_NET_RAW (e.g. `setcap cap_net_raw+ep`), or allow unprivileged ICMP datagram \
         sockets with `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`"
    )]
    NoPermission {
        /// What each attempt returned.
        detail: String,
    },
    /// No ICMP socket of any family could be opened for another reason.
    #[error("cannot open ICMP sockets: {0}")]
    Socket(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_matches_the_reference_cadence() {
        let c = EngineConfig::default();
        c.validate().unwrap();
        assert_eq!(
            (c.interval, c.count, c.timeout),
            (Duration::from_secs(10), 3, Duration::from_secs(1))
        );
    }

    #[test]
    fn config_rejects_timeout_overlapping_next_probe() {
        let c = EngineConfig {
            interval: Duration::from_secs(1),
            count: 3,
            timeout: Duration::from_millis(400),
            ..EngineConfig::default()
        };
        assert!(matches!(c.validate(), Err(ProbeError::InvalidConfig(m)) if m.contains("spacing")));
    }

    #[test]
    fn config_rejects_out_of_range_values() {
        let base = EngineConfig::default();
        for bad in [
            EngineConfig {
                count: 0,
                ..base.clone()
            },
            EngineConfig {
                count: 65,
                ..base.clone()
            },
            EngineConfig {
                payload_size: 23,
                ..base.clone()
            },
            EngineConfig {
                payload_size: MAX_PAYLOAD + 1,
                ..base.clone()
            },
            EngineConfig {
                timeout: Duration::ZERO,
                ..base.clone()
            },
            EngineConfig {
                tick: Duration::from_micros(500),
                ..base.clone()
            },
            EngineConfig {
                max_lateness: Duration::from_millis(1),
                ..base.clone()
            },
            EngineConfig {
                interval: Duration::from_millis(4),
                ..base.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allowlist_empty_allows_all_else_only_members() {
        let mut c = EngineConfig::default();
        assert!(c.allows("203.0.113.9".parse().unwrap()));
        c.allow = vec![
            "127.0.0.0/8".parse().unwrap(),
            "198.18.0.0/15".parse().unwrap(),
        ];
        assert!(c.allows("127.0.0.1".parse().unwrap()));
        assert!(c.allows("198.19.255.1".parse().unwrap()));
        assert!(!c.allows("198.20.0.1".parse().unwrap()));
        assert!(!c.allows("::1".parse().unwrap()));
    }

    #[test]
    fn no_permission_error_names_both_remedies() {
        let e = ProbeError::NoPermission {
            detail: "EPERM".into(),
        }
        .to_string();
        assert!(
            e.contains("CAP_NET_RAW") && e.contains("ping_group_range"),
            "{e}"
        );
    }
}
