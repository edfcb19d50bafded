//! Target groups and their impairments (pure values).

use crate::LabError;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

/// 198.18.0.0/15 (RFC 2544 benchmarking): every address of it answers in a lab.
pub const LAB_RANGE: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15);

/// Longest delay a group may have: replies are held in memory until due.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// A CIDR inside [`LAB_RANGE`] whose addresses share impairments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Ipv4Net", into = "Ipv4Net")]
pub struct TargetGroup(Ipv4Net);

impl TargetGroup {
    /// Accepts a network inside 198.18.0.0/15; host bits are cleared.
    pub fn new(net: Ipv4Net) -> Result<Self, LabError> {
        let net = net.trunc();
        if LAB_RANGE.contains(&net) {
            Ok(TargetGroup(net))
        } else {
            Err(LabError::InvalidTargets {
                cidr: net.to_string(),
                reason: format!("lab targets must lie inside {LAB_RANGE}"),
            })
        }
    }

    /// Parses `198.18.1.0/24`, or a bare address as a /32.
    pub fn parse(s: &str) -> Result<Self, LabError> {
        let s = s.trim();
        let net = s
            .parse::<Ipv4Net>()
            .or_else(|_| s.parse::<Ipv4Addr>().map(Ipv4Net::from))
            .map_err(|_| LabError::InvalidTargets {
                cidr: s.to_owned(),
                reason: "not an IPv4 CIDR or address".into(),
            })?;
        TargetGroup::new(net)
    }

    pub fn net(&self) -> Ipv4Net {
        self.0
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.0.contains(&addr)
    }

    /// Identifier usable in nftables object names: `g_198_18_1_0_24`.
    pub(crate) fn nft_id(&self) -> String {
        let [a, b, c, d] = self.0.network().octets();
        format!("g_{a}_{b}_{c}_{d}_{}", self.0.prefix_len())
    }
}

impl TryFrom<Ipv4Net> for TargetGroup {
    type Error = LabError;
    fn try_from(net: Ipv4Net) -> Result<Self, LabError> {
        TargetGroup::new(net)
    }
}

impl From<TargetGroup> for Ipv4Net {
    fn from(g: TargetGroup) -> Ipv4Net {
        g.0
    }
}

impl fmt::Display for TargetGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for TargetGroup {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, LabError> {
        TargetGroup::parse(s)
    }
}

/// How lost echo requests are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossMode {
    /// Exactly `pct` of every 100 consecutive requests to the group, spread
    /// evenly over the 100 (`numgen inc`), so a test can assert exact counts.
    Exact,
    /// Each request is dropped independently with probability `pct`/100
    /// (`numgen random`).
    Random,
}

/// Packet loss applied to echo requests, before anything answers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LossRepr", into = "LossRepr")]
pub struct Loss {
    pct: u8,
    mode: LossMode,
}

#[derive(Serialize, Deserialize)]
struct LossRepr {
    pct: u8,
    mode: LossMode,
}

impl TryFrom<LossRepr> for Loss {
    type Error = LabError;
    fn try_from(r: LossRepr) -> Result<Self, LabError> {
        Loss::new(r.pct, r.mode)
    }
}

impl From<Loss> for LossRepr {
    fn from(l: Loss) -> LossRepr {
        LossRepr {
            pct: l.pct,
            mode: l.mode,
        }
    }
}

impl Loss {
    pub fn new(pct: u8, mode: LossMode) -> Result<Self, LabError> {
        if pct > 100 {
            return Err(LabError::InvalidImpairment(format!(
                "loss {pct}% is more than 100%"
            )));
        }
        Ok(Loss { pct, mode })
    }

    pub fn pct(&self) -> u8 {
        self.pct
    }

    pub fn mode(&self) -> LossMode {
        self.mode
    }

    /// For exact loss, the positions (0..100) of `numgen inc mod 100` that
    /// are dropped: `pct` of them, spread like Bresenham's line so that no
    /// run of drops is longer than it must be. (A plain `< pct` would drop
    /// the first `pct` requests of every 100 in one burst, which a prober
    /// with 3 probes per window sees as whole windows lost.)
    pub(crate) fn exact_positions(&self) -> Vec<u8> {
        let p = u32::from(self.pct);
        (0..100u32)
            .filter(|i| (i + 1) * p / 100 > i * p / 100)
            .map(|i| i as u8)
            .collect()
    }
}

/// Reply delay: uniform in `[delay - jitter, delay + jitter]` (not below 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DelayRepr", into = "DelayRepr")]
pub struct Delay {
    delay: Duration,
    jitter: Duration,
}

#[derive(Serialize, Deserialize)]
struct DelayRepr {
    delay_us: u64,
    jitter_us: u64,
}

impl TryFrom<DelayRepr> for Delay {
    type Error = LabError;
    fn try_from(r: DelayRepr) -> Result<Self, LabError> {
        Delay::new(
            Duration::from_micros(r.delay_us),
            Duration::from_micros(r.jitter_us),
        )
    }
}

impl From<Delay> for DelayRepr {
    fn from(d: Delay) -> DelayRepr {
        DelayRepr {
            delay_us: d.delay.as_micros() as u64,
            jitter_us: d.jitter.as_micros() as u64,
        }
    }
}

impl Delay {
    pub const ZERO: Delay = Delay {
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
    };

    /// Both values are kept to the microsecond; each must be at most 60 s.
    pub fn new(delay: Duration, jitter: Duration) -> Result<Self, LabError> {
        for (what, d) in [("delay", delay), ("jitter", jitter)] {
            if d > MAX_DELAY {
                return Err(LabError::InvalidImpairment(format!(
                    "{what} {d:?} is longer than {MAX_DELAY:?}"
                )));
            }
        }
        let us = |d: Duration| Duration::from_micros(d.as_micros() as u64);
        Ok(Delay {
            delay: us(delay),
            jitter: us(jitter),
        })
    }

    pub fn delay(&self) -> Duration {
        self.delay
    }

    pub fn jitter(&self) -> Duration {
        self.jitter
    }

    pub fn is_zero(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero()
    }

    /// The lowest and highest delay this setting produces.
    pub fn bounds(&self) -> (Duration, Duration) {
        (
            self.delay.saturating_sub(self.jitter),
            self.delay + self.jitter,
        )
    }
}

/// What is done to the echo requests sent to one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impairments {
    pub loss: Option<Loss>,
    pub delay: Option<Delay>,
}

/// Echo requests counted by nftables for one group since its rules were
/// last loaded (any change to a lab's groups reloads them all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounters {
    /// Echo requests addressed to the group (dropped ones included).
    pub requests: u64,
    /// Echo requests the group's loss rule dropped.
    pub dropped: u64,
}

/// A lab's groups, ordered by network.
pub(crate) type Groups = BTreeMap<TargetGroup, Impairments>;

/// Groups from most to least specific: the order in which they must be
/// matched for "longest prefix wins".
pub(crate) fn most_specific_first(groups: &Groups) -> Vec<(TargetGroup, Impairments)> {
    let mut v: Vec<_> = groups.iter().map(|(g, i)| (*g, *i)).collect();
    v.sort_by_key(|(g, _)| (std::cmp::Reverse(g.net().prefix_len()), *g));
    v
}

/// Parses `20ms`, `1.5ms`, `250us`, `2s` or `0` (zero needs no unit).
pub fn parse_millis(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("duration {s:?} needs a unit (us, ms or s)"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?} (try 20ms, 1.5ms, 250us)"))?;
    let micros = match unit {
        "us" | "µs" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return Err(format!("bad unit in {s:?} (use us, ms or s)")),
    };
    if !micros.is_finite() || !(0.0..=MAX_DELAY.as_micros() as f64).contains(&micros) {
        return Err(format!("duration {s:?} must be between 0 and 60s"));
    }
    Ok(Duration::from_micros(micros.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> TargetGroup {
        TargetGroup::parse(s).unwrap()
    }

    #[test]
    fn groups_inside_the_lab_range_are_accepted_and_truncated() {
        assert_eq!(g("198.18.1.7/24").to_string(), "198.18.1.0/24");
        assert_eq!(g("198.19.255.255").to_string(), "198.19.255.255/32");
        assert_eq!(g("198.18.0.0/15").to_string(), "198.18.0.0/15");
    }

    #[test]
    fn groups_outside_the_lab_range_are_rejected() {
        for bad in [
            "198.16.0.0/14",
            "198.20.0.1",
            "127.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "2001:2::1",
            "nope",
        ] {
            assert!(
                matches!(
                    TargetGroup::parse(bad),
                    Err(LabError::InvalidTargets { .. })
                ),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn nft_ids_are_identifiers() {
        assert_eq!(g("198.18.1.0/24").nft_id(), "g_198_18_1_0_24");
    }

    #[test]
    fn exact_loss_drops_exactly_pct_of_100_positions_spread_out() {
        for pct in 0..=100u8 {
            let pos = Loss::new(pct, LossMode::Exact).unwrap().exact_positions();
            assert_eq!(pos.len(), usize::from(pct), "pct {pct}");
        }
        let thirty = Loss::new(30, LossMode::Exact).unwrap().exact_positions();
        // Never two drops in a row at 30 %: gaps of 3 or 4 positions.
        for w in thirty.windows(2) {
            assert!((3..=4).contains(&(w[1] - w[0])), "{thirty:?}");
        }
        // Any 10 consecutive requests lose exactly 3.
        for start in 0..=90u8 {
            let n = thirty
                .iter()
                .filter(|&&p| (start..start + 10).contains(&p))
                .count();
            assert_eq!(n, 3, "window at {start}: {thirty:?}");
        }
    }

    #[test]
    fn loss_over_100_is_rejected() {
        assert!(Loss::new(101, LossMode::Random).is_err());
        assert!(Loss::new(100, LossMode::Random).is_ok());
    }

    #[test]
    fn delay_bounds_do_not_go_below_zero() {
        let d = Delay::new(Duration::from_millis(20), Duration::from_millis(5)).unwrap();
        assert_eq!(
            d.bounds(),
            (Duration::from_millis(15), Duration::from_millis(25))
        );
        let d = Delay::new(Duration::from_millis(2), Duration::from_millis(5)).unwrap();
        assert_eq!(d.bounds(), (Duration::ZERO, Duration::from_millis(7)));
        assert!(Delay::new(Duration::from_secs(61), Duration::ZERO).is_err());
    }

    #[test]
    fn millis_parse_units_and_zero() {
        assert_eq!(parse_millis("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_millis("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_millis("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_millis("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_millis("0"), Ok(Duration::ZERO));
        assert_eq!(parse_millis("0ms"), Ok(Duration::ZERO));
        for bad in ["20", "20x", "-1ms", "ms", "61s", "nanms"] {
            assert!(parse_millis(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn most_specific_groups_come_first() {
        let mut groups = Groups::new();
        for s in [
            "198.18.0.0/15",
            "198.18.1.0/24",
            "198.18.1.1",
            "198.18.0.0/16",
        ] {
            groups.insert(g(s), Impairments::default());
        }
        let order: Vec<String> = most_specific_first(&groups)
            .iter()
            .map(|(g, _)| g.to_string())
            .collect();
        assert_eq!(
            order,
            [
                "198.18.1.1/32",
                "198.18.1.0/24",
                "198.18.0.0/16",
                "198.18.0.0/15"
            ]
        );
    }

    #[test]
    fn impairments_round_trip_through_json() {
        let i = Impairments {
            loss: Some(Loss::new(30, LossMode::Exact).unwrap()),
            delay: Some(
                Delay::new(Duration::from_millis(20), Duration::from_micros(1500)).unwrap(),
            ),
        };
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(
            json,
            r#"{"loss":{"pct":30,"mode":"exact"},"delay":{"delay_us":20000,"jitter_us":1500}}"#
        );
        assert_eq!(serde_json::from_str::<Impairments>(&json).unwrap(), i);
        assert!(serde_json::from_str::<Loss>(r#"{"pct":101,"mode":"exact"}"#).is_err());
    }
}
