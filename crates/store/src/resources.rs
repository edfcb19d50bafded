//! Listing parameters shared by the resource queries.

use domain::{ConnectionId, GatewayId};

/// `limit`/`marker` pagination: the marker is the `created_at` (with
/// microseconds) of the last item of the previous page.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    pub limit: Option<i64>,
    pub marker_us: Option<i64>,
}

/// One page of a list, with the total over all pages.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: i64,
    /// `created_at` of the last item, with microseconds.
    pub next_marker: Option<String>,
}

/// Filters of `GET /vpn-connection`.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub vpn_id: Option<ConnectionId>,
    pub vgw_id: Option<GatewayId>,
    pub vgw_ip: Option<String>,
    pub eip_id: Option<String>,
    pub eps: Vec<String>,
}

/// An entry of the EIP pool and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEntry {
    /// Stable id (UUIDv5 of the address).
    pub id: String,
    /// The address.
    pub address: String,
    /// Project of the gateway it is bound to.
    pub project_id: Option<String>,
    /// Gateway it is bound to.
    pub vgw_id: Option<String>,
}
