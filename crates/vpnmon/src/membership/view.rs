//! This node's view of the membership, for ownership: the live nodes and
//! the prefixes each can send from (this node's own prefixes fresh from the
//! kernel, the others' as last read from the store), and the rendezvous
//! decision per monitor ([`domain::ownership::owner`]).

use domain::ownership::{Member, owner, parse_prefixes};
use domain::{MonitorId, NodeId};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use store::{NodeRecord, NodeRegistration};

/// Who probes a monitor, as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// This node.
    Mine,
    /// Another live node.
    Other,
    /// No live node can send from the monitor's source.
    Nobody,
}

#[derive(Debug)]
struct Inner {
    me: Member,
    others: Vec<Member>,
    /// `me` first, then `others`.
    all: Vec<Member>,
}

/// The shared view.
#[derive(Debug)]
pub struct View(RwLock<Inner>);

impl View {
    /// A view with only this node, which can send from nothing yet.
    pub fn new(node: &NodeRegistration) -> Self {
        let me = Member {
            id: node.id,
            name: node.name.clone(),
            prefixes: Vec::new(),
        };
        View(RwLock::new(Inner {
            all: vec![me.clone()],
            me,
            others: Vec::new(),
        }))
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.read().me.id
    }

    /// Sets the prefixes this node can send from; true when they changed.
    pub fn set_local(&self, prefixes: Vec<IpNet>) -> bool {
        let mut g = self.write();
        if g.me.prefixes == prefixes {
            return false;
        }
        g.me.prefixes = prefixes;
        rebuild(&mut g);
        true
    }

    /// This node's prefixes, as reported to the store.
    pub fn local(&self) -> Vec<String> {
        self.read()
            .me
            .prefixes
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Sets the other live nodes from the store's list (this node's own
    /// row is skipped: its prefixes are the kernel's); true when changed.
    pub fn set_members(&self, live: &[NodeRecord]) -> bool {
        let mut g = self.write();
        let me = g.me.id;
        let mut others: Vec<Member> = live
            .iter()
            .filter(|n| n.id != me)
            .map(|n| Member {
                id: n.id,
                name: n.name.clone(),
                prefixes: parse_prefixes(&n.addresses),
            })
            .collect();
        others.sort_by_key(|m| m.id);
        if others == g.others {
            return false;
        }
        g.others = others;
        rebuild(&mut g);
        true
    }

    /// Who probes monitor `id` with source `source`.
    pub fn ownership(&self, id: &MonitorId, source: IpAddr) -> Ownership {
        let g = self.read();
        match owner(id, source, &g.all) {
            Some(m) if m.id == g.me.id => Ownership::Mine,
            Some(_) => Ownership::Other,
            None => Ownership::Nobody,
        }
    }
}

fn rebuild(g: &mut Inner) {
    let mut all = Vec::with_capacity(g.others.len() + 1);
    all.push(g.me.clone());
    all.extend(g.others.iter().cloned());
    g.all = all;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: NodeId, name: &str, addresses: &[&str]) -> NodeRecord {
        NodeRecord {
            id,
            name: name.into(),
            host: "h".into(),
            started_us: 0,
            heartbeat_us: 0,
            expires_us: 0,
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            monitors: 0,
            process: None,
        }
    }

    #[test]
    fn a_node_owns_what_only_it_can_send_from_and_shares_anyip() {
        let me = NodeRegistration {
            id: NodeId::random(),
            name: "a".into(),
            host: "h".into(),
            process: None,
        };
        let v = View::new(&me);
        let m = MonitorId::random();
        let src: IpAddr = "198.18.0.5".parse().unwrap();
        assert_eq!(v.ownership(&m, src), Ownership::Nobody);
        assert!(v.set_local(vec!["198.18.0.5/32".parse().unwrap()]));
        assert!(
            !v.set_local(vec!["198.18.0.5/32".parse().unwrap()]),
            "unchanged"
        );
        assert_eq!(v.ownership(&m, src), Ownership::Mine);
        assert_eq!(v.local(), ["198.18.0.5/32"]);
        // Our own row in the store does not override the kernel's view.
        let other = NodeId::random();
        assert!(v.set_members(&[
            record(me.id, "a", &[]),
            record(other, "b", &["198.18.1.0/24"])
        ]));
        assert_eq!(v.ownership(&m, src), Ownership::Mine);
        assert_eq!(
            v.ownership(&m, "198.18.1.9".parse().unwrap()),
            Ownership::Other
        );
        // The other node leaves: its addresses are nobody's.
        assert!(v.set_members(&[]));
        assert_eq!(
            v.ownership(&m, "198.18.1.9".parse().unwrap()),
            Ownership::Nobody
        );
    }
}
