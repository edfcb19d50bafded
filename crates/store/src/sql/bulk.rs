//! Bulk creation of monitored links (customer gateway + connection +
//! monitor per address) on one gateway, in large transactions: for fleets
//! and benchmarks, where one HTTP request per resource would be slow. The
//! same domain rules run as through the API.

use super::resources::{
    insert_cgw_row, insert_connection_row, insert_monitor_row, load_gateway, used_tunnels,
};
use super::{SqlStore, internal, render_created, reserve_created};
use crate::Result;
use domain::connection::{self, CreateConnection};
use domain::customer_gateway::{self, CreateCgw};
use domain::monitor;
use domain::{ConnectionId, CustomerGatewayId, GatewayId, MonitorId, ProjectId};

/// Rows per transaction.
const BATCH: usize = 1000;

impl SqlStore {
    /// For each customer-gateway address, creates a customer gateway, a
    /// policy-mode connection on gateway `vgw_id` (using `vgw_ip`) and its
    /// monitor. Returns the monitor ids.
    pub async fn bulk_monitored_links(
        &self,
        p: &ProjectId,
        vgw_id: &GatewayId,
        vgw_ip: &str,
        addresses: &[String],
        psk: &str,
    ) -> Result<Vec<MonitorId>> {
        let mut out = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(BATCH) {
            let mut tx = self.write.begin().await.map_err(internal)?;
            let gw = load_gateway(&mut tx, p, vgw_id).await?;
            let used = used_tunnels(&mut tx, vgw_id).await?;
            let now = self.now_us();
            let mut created = reserve_created(
                &mut tx,
                &[
                    "vpn_connections",
                    "customer_gateways",
                    "connection_monitors",
                ],
                p,
                now,
                chunk.len() as i64,
            )
            .await?;
            for addr in chunk {
                let at = render_created(created);
                let cgw = customer_gateway::create(
                    CreateCgw {
                        id_value: Some(addr.clone()),
                        ..Default::default()
                    },
                    CustomerGatewayId::random(),
                    &at,
                )?;
                let req = CreateConnection {
                    vgw_id: Some(vgw_id.to_string()),
                    vgw_ip: Some(vgw_ip.to_string()),
                    cgw_id: Some(cgw.id.to_string()),
                    style: Some("policy".into()),
                    peer_subnets: Some(vec!["10.255.0.0/16".into()]),
                    policy_rules: Some(Vec::new()),
                    psk: Some(psk.to_string()),
                    ..Default::default()
                };
                let conn = connection::create(req, ConnectionId::random(), &at, &gw, &cgw, &used)?;
                let m = monitor::derive(MonitorId::random(), &conn, &gw, &cgw)?;
                insert_cgw_row(&mut tx, p, created, &cgw).await?;
                insert_connection_row(&mut tx, p, created, &conn).await?;
                insert_monitor_row(&mut tx, p, created, &m).await?;
                out.push(m.id);
                created += 1000;
            }
            tx.commit().await.map_err(internal)?;
        }
        Ok(out)
    }
}
