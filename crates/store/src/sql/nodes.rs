//! The SQL of node membership. Every time is read from the database's
//! clock in the statement that uses it, so a lease is granted, renewed and
//! judged expired by one clock. The one expression that differs between
//! the engines is "now in microseconds" ([`now_us_sql`]).

use super::{Backend, SqlStore, get, get_id, internal, json, parse};
use crate::Result;
use crate::nodes::{NodeLease, NodeRecord, NodeRegistration, NodeReport};
use domain::{DomainError, NodeId};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use std::time::Duration;

/// How long the row of a node whose lease ran out is kept (it is no
/// longer listed; the row only helps when reading logs).
const SWEEP_AFTER_US: i64 = 60_000_000;

/// The database's "now", in microseconds since the epoch.
fn now_us_sql(b: Backend) -> &'static str {
    match b {
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT)",
        // julianday('now') is stable within one statement.
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
    }
}

fn ttl_us(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX / 2)
}

fn lease_from_row(r: &AnyRow) -> Result<NodeLease> {
    Ok(NodeLease {
        heartbeat_us: get(r, "heartbeat_us")?,
        expires_us: get(r, "expires_us")?,
    })
}

fn node_from_row(r: &AnyRow) -> Result<NodeRecord> {
    Ok(NodeRecord {
        id: get_id(r, "id")?,
        name: get(r, "name")?,
        host: get(r, "host")?,
        started_us: get(r, "started_us")?,
        heartbeat_us: get(r, "heartbeat_us")?,
        expires_us: get(r, "expires_us")?,
        addresses: parse(&get::<String>(r, "addresses")?)?,
        monitors: get(r, "monitors")?,
        process: get(r, "process")?,
    })
}

impl SqlStore {
    async fn sweep_nodes(&self) -> Result<()> {
        let now = now_us_sql(self.backend());
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM nodes WHERE expires_us < {now} - $1"
        )))
        .bind(SWEEP_AFTER_US)
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(())
    }

    pub(crate) async fn register_node_sql(
        &self,
        node: &NodeRegistration,
        ttl: Duration,
    ) -> Result<NodeLease> {
        let now = now_us_sql(self.backend());
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO nodes (id, name, host, started_us, heartbeat_us, expires_us, process) \
             VALUES ($1, $2, $3, {now}, {now}, {now} + $4, $5) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_us = excluded.heartbeat_us, \
                 expires_us = excluded.expires_us \
             WHERE nodes.expires_us <= excluded.heartbeat_us \
             RETURNING heartbeat_us, expires_us"
        )))
        .bind(node.id.to_string())
        .bind(node.name.clone())
        .bind(node.host.clone())
        .bind(ttl_us(ttl))
        .bind(node.process.clone())
        .fetch_optional(&self.write)
        .await
        .map_err(internal)?;
        match row {
            Some(r) => lease_from_row(&r),
            None => Err(DomainError::Internal(format!(
                "node {} is already registered and its lease has not run out",
                node.id
            ))),
        }
    }

    pub(crate) async fn renew_node_sql(
        &self,
        id: &NodeId,
        ttl: Duration,
        report: &NodeReport,
    ) -> Result<Option<NodeLease>> {
        let now = now_us_sql(self.backend());
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE nodes SET heartbeat_us = {now}, expires_us = {now} + $2, \
                 addresses = $3, monitors = $4 \
             WHERE id = $1 AND expires_us > {now} \
             RETURNING heartbeat_us, expires_us"
        )))
        .bind(id.to_string())
        .bind(ttl_us(ttl))
        .bind(json(&report.addresses)?)
        .bind(report.monitors)
        .fetch_optional(&self.write)
        .await
        .map_err(internal)?;
        self.sweep_nodes().await?;
        row.as_ref().map(lease_from_row).transpose()
    }

    pub(crate) async fn leave_node_sql(&self, id: &NodeId) -> Result<bool> {
        let r = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    pub(crate) async fn live_nodes_sql(&self) -> Result<Vec<NodeRecord>> {
        let now = now_us_sql(self.backend());
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, name, host, started_us, heartbeat_us, expires_us, addresses, monitors, process \
             FROM nodes WHERE expires_us > {now} ORDER BY name, id"
        )))
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        rows.iter().map(node_from_row).collect()
    }
}
