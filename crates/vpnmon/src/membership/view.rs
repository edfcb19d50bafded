//! This node's view of the membership, for ownership: the live nodes and
//! the prefixes each can send from (this node's own prefixes fresh from the
//! kernel, the others' as last read from the store), and the rendezvous
//! decision per monitor ([`domain::ownership::owner`]), and which node runs
//! the run-once jobs ([`View::runs_jobs`]).

use domain::ownership::{Member, owner, parse_prefixes};
use domain::{MonitorId, NodeId};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use store::{NodeRecord, NodeRegistration};
use tokio::time::Instant;

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
    /// When this node's own row was last seen in the live list, its start
    /// time there (the database's clock), and the others' (id, start).
    my_start: Option<i64>,
    starts: Vec<(NodeId, i64)>,
    /// Since when this node has held its lease without a break (None while
    /// fenced or gone).
    held_since: Option<Instant>,
    /// How long the lease must have been held before this node may lead.
    settle: Duration,
}

/// The shared view.
#[derive(Debug)]
pub struct View(RwLock<Inner>, AtomicBool);

impl View {
    /// A view with only this node, which can send from nothing yet.
    /// `settle`: how long the node must hold its lease without a break
    /// before it may run the run-once jobs ([`View::runs_jobs`]).
    pub fn new(node: &NodeRegistration, settle: Duration) -> Self {
        let me = Member {
            id: node.id,
            name: node.name.clone(),
            prefixes: Vec::new(),
        };
        View(
            RwLock::new(Inner {
                all: vec![me.clone()],
                me,
                others: Vec::new(),
                my_start: None,
                starts: Vec::new(),
                held_since: None,
                settle,
            }),
            AtomicBool::new(false),
        )
    }

    /// Records whether this node holds its lease (from `at` on) or not.
    pub fn set_lease_held(&self, at: Option<Instant>) {
        let mut g = self.write();
        g.held_since = match (g.held_since, at) {
            (Some(since), Some(_)) => Some(since),
            (_, at) => at,
        };
    }

    /// Whether this node runs the run-once jobs (rollups, retention, the
    /// alarm rules' no-data check) now: it holds its lease, has held it
    /// without a break for the settle time, was in the live list at its
    /// last read, and no other live node started before it (the database's
    /// clock; ties by id). Every node decides from the same list, so at
    /// most one leads: an older node that loses its lease fences itself a
    /// second before the others can see it gone, and one that registers
    /// again is younger than everyone or must first hold its lease for the
    /// settle time, longer than the others need to see it back.
    pub fn runs_jobs(&self, now: Instant) -> bool {
        let leads = {
            let g = self.read();
            match (g.held_since, g.my_start) {
                (Some(since), Some(mine)) => {
                    now.saturating_duration_since(since) >= g.settle
                        && g.starts
                            .iter()
                            .all(|&(id, start)| (mine, g.me.id) < (start, id))
                }
                _ => false,
            }
        };
        if self.1.swap(leads, Ordering::Relaxed) != leads {
            if leads {
                tracing::info!(
                    "this node runs the run-once jobs (rollups, retention, alarm no-data check)"
                );
            } else {
                tracing::info!("this node no longer runs the run-once jobs");
            }
        }
        leads
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
        g.my_start = live.iter().find(|n| n.id == me).map(|n| n.started_us);
        g.starts = live
            .iter()
            .filter(|n| n.id != me)
            .map(|n| (n.id, n.started_us))
            .collect();
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
        let v = View::new(&me, Duration::ZERO);
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

    fn started(id: NodeId, start: i64) -> NodeRecord {
        NodeRecord {
            started_us: start,
            ..record(id, "n", &[])
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_oldest_live_node_with_a_settled_lease_runs_the_jobs() {
        let node = |name: &str| NodeRegistration {
            id: NodeId::random(),
            name: name.into(),
            host: "h".into(),
            process: None,
        };
        let (a, b) = (node("a"), node("b"));
        let settle = Duration::from_secs(10);
        let (va, vb) = (View::new(&a, settle), View::new(&b, settle));
        let t0 = Instant::now();
        // Nothing read yet, no lease: nobody leads.
        assert!(!va.runs_jobs(t0));
        va.set_lease_held(Some(t0));
        vb.set_lease_held(Some(t0));
        assert!(
            !va.runs_jobs(t0),
            "its own row not seen in the live list yet"
        );
        let live = [started(a.id, 100), started(b.id, 200)];
        va.set_members(&live);
        vb.set_members(&live);
        assert!(
            !va.runs_jobs(t0 + Duration::from_secs(9)),
            "lease not settled"
        );
        let t = t0 + settle;
        assert!(va.runs_jobs(t), "a started first");
        assert!(!vb.runs_jobs(t), "b is younger");
        // A fences itself (cannot prove its lease): it stops at once, and
        // b does not start until it no longer sees a in the live list.
        va.set_lease_held(None);
        assert!(!va.runs_jobs(t));
        assert!(!vb.runs_jobs(t));
        vb.set_members(&[started(b.id, 200)]);
        assert!(vb.runs_jobs(t), "a is gone: b leads");
        // A's lease comes back: it must hold it for the settle time again,
        // and it is the older one, so b hands back when it sees a again.
        let back = t + Duration::from_secs(20);
        va.set_lease_held(Some(back));
        va.set_members(&live);
        assert!(!va.runs_jobs(back + Duration::from_secs(5)), "not settled");
        vb.set_members(&live);
        assert!(
            !vb.runs_jobs(back + Duration::from_secs(2)),
            "b sees a again"
        );
        assert!(va.runs_jobs(back + settle));
        // Renewals while held do not restart the settle time.
        va.set_lease_held(Some(back + settle));
        assert!(va.runs_jobs(back + settle));
        // Equal start times: the smaller id leads, on both views alike.
        let (c, d) = (node("c"), node("d"));
        let (vc, vd) = (View::new(&c, Duration::ZERO), View::new(&d, Duration::ZERO));
        let tie = [started(c.id, 5), started(d.id, 5)];
        for v in [&vc, &vd] {
            v.set_lease_held(Some(t0));
            v.set_members(&tie);
        }
        assert_ne!(vc.runs_jobs(t0), vd.runs_jobs(t0));
        assert_eq!(vc.runs_jobs(t0), c.id < d.id);
        assert_eq!(store::job_leader(&tie), Some(c.id.min(d.id)));
    }
}
