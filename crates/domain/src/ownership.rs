//! Which node probes a monitor: rendezvous (highest-random-weight) hashing
//! over the live nodes that can send from the monitor's source address.
//!
//! Every node computes the same answer from the same membership, with no
//! write per monitor: a monitor is probed by the eligible node with the
//! highest [`score`] of (monitor, node). Eligibility is locality: a node is
//! eligible when one of the prefixes it can send from (its interface
//! addresses and `local` routes, read from the kernel) contains the
//! monitor's `source_ip`. A gateway address held by one host thus has one
//! candidate; an address configured on every node (AnyIP) is spread evenly
//! over all of them. When a node joins or leaves, only the monitors it
//! wins or held move (unlike `hash % n`, which moves almost all).
//!
//! The score is an explicit FNV-1a over both ids' bytes with a splitmix64
//! finaliser, not the standard library's hasher, whose algorithm may change
//! between Rust releases: nodes built by different compilers must agree.

use crate::{MonitorId, NodeId};
use ipnet::IpNet;
use std::net::IpAddr;

/// A live node as ownership sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The node's id (the hash input).
    pub id: NodeId,
    /// Its name (for the state endpoint).
    pub name: String,
    /// The prefixes it can send from.
    pub prefixes: Vec<IpNet>,
}

impl Member {
    /// Whether the node can send from `source`.
    pub fn can_send_from(&self, source: IpAddr) -> bool {
        self.prefixes.iter().any(|p| p.contains(&source))
    }
}

/// Parses stored addresses: `198.18.0.5` (a host) or `198.18.0.0/15`;
/// anything else is skipped.
pub fn parse_prefixes(addresses: &[String]) -> Vec<IpNet> {
    addresses
        .iter()
        .filter_map(|a| {
            a.parse::<IpNet>()
                .ok()
                .or_else(|| a.parse::<IpAddr>().ok().map(IpNet::from))
        })
        .collect()
}

/// The weight of `node` for `monitor`.
pub fn score(monitor: &MonitorId, node: &NodeId) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in monitor
        .uuid()
        .as_bytes()
        .iter()
        .chain(node.uuid().as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finaliser: FNV alone mixes its last bytes poorly.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The node that probes `monitor` (source address `source`): the eligible
/// member with the highest score (ties, which need equal 64-bit scores, go
/// to the higher id); `None` when no live node can send from `source`.
pub fn owner<'a>(monitor: &MonitorId, source: IpAddr, members: &'a [Member]) -> Option<&'a Member> {
    members
        .iter()
        .filter(|m| m.can_send_from(source))
        .max_by_key(|m| (score(monitor, &m.id), m.id))
}

/// Why a monitor is not probed when [`owner`] is `None`.
pub fn unowned_reason(source: IpAddr) -> String {
    format!("no live node can send from {source}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn member(name: &str, prefixes: &[&str]) -> Member {
        Member {
            id: NodeId::random(),
            name: name.into(),
            prefixes: parse_prefixes(&prefixes.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn monitors(n: usize) -> Vec<MonitorId> {
        (0..n).map(|_| MonitorId::random()).collect()
    }

    fn assignment(
        ms: &[MonitorId],
        source: IpAddr,
        members: &[Member],
    ) -> HashMap<MonitorId, NodeId> {
        ms.iter()
            .filter_map(|m| owner(m, source, members).map(|o| (*m, o.id)))
            .collect()
    }

    #[test]
    fn only_a_node_that_can_send_from_the_source_owns_it() {
        let a = member("a", &["198.18.0.5"]);
        let b = member("b", &["198.18.1.0/24"]);
        let c = member("c", &["2001:db8::/64"]);
        let all = [a.clone(), b.clone(), c.clone()];
        for m in monitors(200) {
            assert_eq!(owner(&m, ip("198.18.0.5"), &all).map(|o| o.id), Some(a.id));
            assert_eq!(owner(&m, ip("198.18.1.77"), &all).map(|o| o.id), Some(b.id));
            assert_eq!(owner(&m, ip("2001:db8::9"), &all).map(|o| o.id), Some(c.id));
            assert_eq!(owner(&m, ip("198.18.0.6"), &all), None, "nobody holds .6");
        }
        assert_eq!(
            unowned_reason(ip("198.18.0.6")),
            "no live node can send from 198.18.0.6"
        );
    }

    #[test]
    fn the_owner_does_not_depend_on_the_order_of_the_members() {
        let mut all = vec![
            member("a", &["0.0.0.0/0"]),
            member("b", &["0.0.0.0/0"]),
            member("c", &["0.0.0.0/0"]),
        ];
        let ms = monitors(500);
        let before = assignment(&ms, ip("198.18.0.5"), &all);
        all.reverse();
        assert_eq!(assignment(&ms, ip("198.18.0.5"), &all), before);
    }

    #[test]
    fn anyip_monitors_spread_evenly() {
        let all: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|n| member(n, &["198.18.0.0/15"]))
            .collect();
        let ms = monitors(3000);
        let a = assignment(&ms, ip("198.18.0.5"), &all);
        for m in &all {
            let n = a.values().filter(|o| **o == m.id).count();
            assert!((850..=1150).contains(&n), "{} owns {n} of 3000", m.name);
        }
    }

    #[test]
    fn a_node_that_leaves_moves_only_its_own_monitors() {
        let all: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| member(n, &["198.18.0.0/15"]))
            .collect();
        let ms = monitors(2000);
        let before = assignment(&ms, ip("198.18.3.3"), &all);
        let gone = all[1].id;
        let rest: Vec<_> = all.iter().filter(|m| m.id != gone).cloned().collect();
        let after = assignment(&ms, ip("198.18.3.3"), &rest);
        for m in &ms {
            if before[m] != gone {
                assert_eq!(after[m], before[m], "a monitor of a surviving node moved");
            } else {
                assert_ne!(after[m], gone);
            }
        }
    }

    #[test]
    fn a_node_that_joins_takes_only_monitors_it_wins_and_a_fair_share() {
        let mut all: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|n| member(n, &["198.18.0.0/15"]))
            .collect();
        let ms = monitors(3000);
        let before = assignment(&ms, ip("198.18.0.9"), &all);
        let new = member("d", &["198.18.0.0/15"]);
        all.push(new.clone());
        let after = assignment(&ms, ip("198.18.0.9"), &all);
        let mut moved = 0;
        for m in &ms {
            if after[m] != before[m] {
                assert_eq!(after[m], new.id, "a monitor moved to an old node");
                moved += 1;
            }
        }
        assert!(
            (600..=900).contains(&moved),
            "{moved} of 3000 moved (about a quarter)"
        );
    }

    #[test]
    fn a_joining_node_that_cannot_send_from_the_source_takes_nothing() {
        let mut all = vec![
            member("a", &["198.18.0.5"]),
            member("b", &["198.18.0.0/24"]),
        ];
        let ms = monitors(300);
        let before = assignment(&ms, ip("198.18.0.5"), &all);
        all.push(member("c", &["10.0.0.0/8"]));
        assert_eq!(assignment(&ms, ip("198.18.0.5"), &all), before);
    }

    #[test]
    fn the_score_is_fixed_across_builds() {
        // Nodes of different builds must agree: the hash is ours, not std's.
        let m = MonitorId::parse("7f6c1a52-4bd8-4a83-9f5e-2f0a3b8f1c11").unwrap();
        let n = NodeId::parse("0b2a7c3e-91d4-4e55-8a6b-5c4d3e2f1a00").unwrap();
        assert_eq!(score(&m, &n), 14_389_360_042_685_891_419);
    }
}
