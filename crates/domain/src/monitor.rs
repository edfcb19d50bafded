//! Connection monitors: the resource vpnmon exists for.

use crate::DomainError;
use crate::connection::VpnConnection;
use crate::customer_gateway::CustomerGateway;
use crate::gateway::VpnGateway;
use crate::ids::{ConnectionId, MonitorId};
use serde::{Deserialize, Serialize};

/// `CreateConnectionMonitorRequestBodyContent`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMonitor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpn_connection_id: Option<String>,
}

/// Monitor status values (docs/spec/vpn-v5.md §2.4).
pub mod status {
    /// Created, not yet probed.
    pub const PENDING_CREATE: &str = "PENDING_CREATE";
    /// A prober has sent its first probe.
    pub const ACTIVE: &str = "ACTIVE";
    /// Being deleted (never outlives the 204).
    pub const PENDING_DELETE: &str = "PENDING_DELETE";
}

/// A connection monitor in its show shape (`ConnectionMonitorInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionMonitor {
    pub id: MonitorId,
    pub status: String,
    pub vpn_connection_id: ConnectionId,
    #[serde(rename = "type")]
    pub monitor_type: String,
    pub source_ip: String,
    pub destination_ip: String,
    pub proto_type: String,
}

/// Derives a monitor for a connection (docs/spec/vpn-v5.md §2.5): `source_ip` is the
/// gateway address behind the connection's `vgw_ip` (an EIP id for a public
/// gateway, the private address itself for a private one), and
/// `destination_ip` is the customer gateway's `id_value`.
pub fn derive(
    id: MonitorId,
    conn: &VpnConnection,
    gateway: &VpnGateway,
    cgw: &CustomerGateway,
) -> Result<ConnectionMonitor, DomainError> {
    let source_ip = gateway
        .vgw_ips()
        .into_iter()
        .find(|(k, _)| *k == conn.vgw_ip)
        .map(|(_, addr)| addr)
        .ok_or_else(|| {
            DomainError::invalid(format!(
                "vpn connection {} uses vgw_ip {} which gateway {} no longer has",
                conn.id, conn.vgw_ip, gateway.id
            ))
        })?;
    let destination_ip = cgw.probe_address().ok_or_else(|| {
        DomainError::invalid(format!(
            "customer gateway {} is identified by {} {:?}, not by an IP address, so it cannot be probed",
            cgw.id, cgw.id_type, cgw.id_value
        ))
    })?;
    Ok(ConnectionMonitor {
        id,
        status: status::PENDING_CREATE.into(),
        vpn_connection_id: conn.id,
        monitor_type: "gateway".into(),
        source_ip,
        destination_ip: destination_ip.to_string(),
        proto_type: "icmp".into(),
    })
}
