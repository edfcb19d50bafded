//! Node membership: the records of the nodes that share one store.
//!
//! Times are microseconds since the epoch on the **database's** clock, never
//! a node's: the database is the one judge of whether a lease has run out,
//! so nodes whose clocks disagree still agree on who is live.

use domain::NodeId;

/// What a node says about itself when it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRegistration {
    /// New for every process.
    pub id: NodeId,
    /// `--node-name` (default the host name); several nodes may share one.
    pub name: String,
    /// The host name.
    pub host: String,
    /// The process that holds the lease, in a form that another process on
    /// the same host can check for being alive (`None`: not known).
    pub process: Option<String>,
}

/// What a node reports with every renewal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// The source addresses the node can send from.
    pub addresses: Vec<String>,
    /// How many monitors it probes.
    pub monitors: i64,
}

/// A lease as the database granted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLease {
    /// When it was granted or renewed.
    pub heartbeat_us: i64,
    /// When it runs out unless renewed before.
    pub expires_us: i64,
}

/// A live node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub id: NodeId,
    pub name: String,
    pub host: String,
    pub started_us: i64,
    pub heartbeat_us: i64,
    pub expires_us: i64,
    pub addresses: Vec<String>,
    pub monitors: i64,
    /// As registered ([`NodeRegistration::process`]).
    pub process: Option<String>,
}

/// The node of `live` that leads the run-once jobs (rollups, retention,
/// the alarm rules' no-data check): the one that started first on the
/// database's clock, ties by id. A node that has just taken the lead waits
/// a settle time before running them (vpnmon's `membership::view`).
pub fn job_leader(live: &[NodeRecord]) -> Option<NodeId> {
    live.iter()
        .min_by_key(|n| (n.started_us, n.id))
        .map(|n| n.id)
}
