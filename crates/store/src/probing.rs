//! What the probe engine reads and writes.

use domain::{ConnectionId, MonitorId, ProjectId};

/// A monitor as the probe engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeMonitor {
    pub id: MonitorId,
    pub project_id: ProjectId,
    pub vpn_connection_id: ConnectionId,
    pub source_ip: String,
    pub destination_ip: String,
    pub status: String,
}

/// A monitor's link state: `up` is `None` until a window has finished;
/// `note` says why a monitor is not probed, when it is not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    pub up: Option<bool>,
    pub changed_us: Option<i64>,
    pub note: Option<String>,
}

/// A change the probe engine makes to a monitor, applied in batches by
/// [`crate::ProbeStore::update_monitors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorUpdate {
    /// Set the status (e.g. `ACTIVE` once the first probe left).
    Status { id: MonitorId, status: String },
    /// Record the link state, or why the monitor is not probed.
    Link { id: MonitorId, state: LinkState },
}

/// What a node hears of the monitors created or deleted through any node
/// ([`crate::ProbeStore::monitor_feed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorChange {
    /// These monitors were created or deleted (a batch, in commit order;
    /// read them again to see which).
    Touched(Vec<MonitorId>),
    /// Changes may have been missed (the feed's connection was lost and
    /// made again, or a bulk load outran it): read every monitor again.
    Missed,
}

/// A subscription to monitor changes.
#[async_trait::async_trait]
pub trait MonitorFeed: Send {
    /// Waits for the next changes. An error ends the subscription: take a
    /// new one (and read every monitor again).
    async fn next(&mut self) -> crate::Result<MonitorChange>;
}
