//! The SQL of the probe engine's monitor feed and write-back.

use super::resources::monitor_from_row;
use super::{SqlStore, get, get_project_id, internal};
use crate::nodes::{NodeLease, NodeRecord, NodeRegistration, NodeReport};
use crate::probing::{LinkState, MonitorChange, MonitorFeed, MonitorUpdate, ProbeMonitor};
use crate::{ProbeStore, Result};
use async_trait::async_trait;
use domain::{DomainError, MonitorId, NodeId, ProjectId};
use sqlx::any::AnyRow;
use std::time::Duration;

/// A monitor's new status, written only when it changes.
const SET_STATUS_IF_CHANGED: &str =
    "UPDATE connection_monitors SET status = $1 WHERE id = $2 AND status <> $1";

/// Record a monitor's link state (and why it is not probed).
fn set_link_state_query(
    id: &MonitorId,
    s: &LinkState,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query("UPDATE connection_monitors SET link_up = $1, link_changed_us = $2, probe_note = $3 WHERE id = $4")
        .bind(s.up.map(i64::from))
        .bind(s.changed_us)
        .bind(s.note.clone())
        .bind(id.to_string())
}

fn probe_monitor_from_row(r: &AnyRow) -> Result<ProbeMonitor> {
    let m = monitor_from_row(r)?;
    Ok(ProbeMonitor {
        id: m.id,
        project_id: get_project_id(r, "project_id")?,
        vpn_connection_id: m.vpn_connection_id,
        source_ip: m.source_ip,
        destination_ip: m.destination_ip,
        status: m.status,
    })
}

#[async_trait]
impl ProbeStore for SqlStore {
    async fn monitors_for_probing_page(
        &self,
        after_id: Option<&MonitorId>,
        limit: usize,
    ) -> Result<Vec<ProbeMonitor>> {
        let rows = sqlx::query(
            "SELECT id, project_id, vpn_connection_id, status, body FROM connection_monitors \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        rows.iter().map(probe_monitor_from_row).collect()
    }

    async fn monitors_for_probing_by_id(&self, ids: &[MonitorId]) -> Result<Vec<ProbeMonitor>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, project_id, vpn_connection_id, status, body FROM connection_monitors \
             WHERE id IN ({})",
            marks.join(", ")
        );
        // Only numbered placeholders are formatted in; the ids are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id.to_string());
        }
        let rows = q.fetch_all(&self.read).await.map_err(internal)?;
        rows.iter().map(probe_monitor_from_row).collect()
    }

    async fn monitor_feed(&self) -> Result<Option<Box<dyn MonitorFeed>>> {
        match &self.url {
            Some(url) => Ok(Some(Box::new(PgMonitorFeed::listen(url).await?))),
            None => Ok(None),
        }
    }

    async fn update_monitors(&self, updates: &[MonitorUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await.map_err(internal)?;
        for u in updates {
            match u {
                MonitorUpdate::Status { id, status } => {
                    sqlx::query(SET_STATUS_IF_CHANGED)
                        .bind(status.clone())
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(internal)?;
                }
                MonitorUpdate::Link { id, state } => {
                    set_link_state_query(id, state)
                        .execute(&mut *tx)
                        .await
                        .map_err(internal)?;
                }
            }
        }
        tx.commit().await.map_err(internal)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1 AS one")
            .fetch_one(&self.read)
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn register_node(&self, node: &NodeRegistration, ttl: Duration) -> Result<NodeLease> {
        self.register_node_sql(node, ttl).await
    }

    async fn renew_node(
        &self,
        id: &NodeId,
        ttl: Duration,
        report: &NodeReport,
    ) -> Result<Option<NodeLease>> {
        self.renew_node_sql(id, ttl, report).await
    }

    async fn leave_node(&self, id: &NodeId) -> Result<bool> {
        self.leave_node_sql(id).await
    }

    async fn live_nodes(&self) -> Result<Vec<NodeRecord>> {
        self.live_nodes_sql().await
    }

    async fn get_link_state(&self, p: &ProjectId, id: &MonitorId) -> Result<LinkState> {
        let r = sqlx::query("SELECT link_up, link_changed_us, probe_note FROM connection_monitors WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?
            .ok_or(DomainError::NotFound)?;
        Ok(LinkState {
            up: get::<Option<i64>>(&r, "link_up")?.map(|v| v != 0),
            changed_us: get(&r, "link_changed_us")?,
            note: get(&r, "probe_note")?,
        })
    }
}

/// Direct writes for tests and tools, outside the [`ProbeStore`] trait: the
/// prober only ever pages the feed and writes changes in batches.
impl SqlStore {
    /// Every monitor of every project, in creation order.
    pub async fn monitors_for_probing(&self) -> Result<Vec<ProbeMonitor>> {
        let rows = sqlx::query("SELECT id, project_id, vpn_connection_id, status, body FROM connection_monitors ORDER BY created_us")
            .fetch_all(&self.read)
            .await
            .map_err(internal)?;
        rows.iter().map(probe_monitor_from_row).collect()
    }

    /// Sets a monitor's status; false when there is no such monitor.
    pub async fn set_monitor_status(&self, id: &MonitorId, status: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE connection_monitors SET status = $1 WHERE id = $2")
            .bind(status.to_string())
            .bind(id.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a monitor's link state; false when there is no such monitor.
    pub async fn set_link_state(&self, id: &MonitorId, s: &LinkState) -> Result<bool> {
        let r = set_link_state_query(id, s)
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }
}

/// The channel that migration 0015's trigger notifies.
const MONITOR_CHANNEL: &str = "vpnmon_monitors";

/// Ids read from the feed per batch (one lookup each).
const FEED_BATCH: usize = 500;

/// More changes waiting than this (a bulk load): read everything again
/// instead, a page at a time.
const FEED_BACKLOG: usize = 20_000;

/// What the listening task passes on.
enum Heard {
    Id(String),
    Lost,
    Failed(String),
}

/// `LISTEN vpnmon_monitors` on a connection of its own; a task reads it so
/// that [`MonitorFeed::next`] can take what arrived in batches.
struct PgMonitorFeed {
    rx: tokio::sync::mpsc::Receiver<Heard>,
    reader: tokio::task::JoinHandle<()>,
}

impl PgMonitorFeed {
    async fn listen(url: &str) -> Result<Self> {
        let mut l = sqlx::postgres::PgListener::connect(url)
            .await
            .map_err(internal)?;
        l.listen(MONITOR_CHANNEL).await.map_err(internal)?;
        let (tx, rx) = tokio::sync::mpsc::channel(FEED_BACKLOG * 2);
        let reader = tokio::spawn(async move {
            loop {
                let heard = match l.try_recv().await {
                    Ok(Some(n)) => Heard::Id(n.payload().to_string()),
                    // Lost and connected again (listening again): what was
                    // sent meanwhile is gone.
                    Ok(None) => Heard::Lost,
                    Err(e) => Heard::Failed(e.to_string()),
                };
                let end = matches!(heard, Heard::Failed(_));
                if tx.send(heard).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(PgMonitorFeed { rx, reader })
    }
}

impl Drop for PgMonitorFeed {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[async_trait]
impl MonitorFeed for PgMonitorFeed {
    async fn next(&mut self) -> Result<MonitorChange> {
        let first = self
            .rx
            .recv()
            .await
            .ok_or_else(|| DomainError::Internal("the monitor feed ended".into()))?;
        let mut ids = Vec::new();
        let mut missed = self.rx.len() > FEED_BACKLOG;
        let mut next = Some(first);
        while let Some(h) = next.take() {
            match h {
                Heard::Id(s) => match MonitorId::parse(&s) {
                    Some(id) => ids.push(id),
                    None => tracing::warn!(payload = %s, "monitor feed: not a monitor id"),
                },
                Heard::Lost => missed = true,
                Heard::Failed(e) => {
                    return Err(DomainError::Internal(format!("monitor feed: {e}")));
                }
            }
            if missed || ids.len() < FEED_BATCH {
                next = self.rx.try_recv().ok();
            }
        }
        Ok(if missed {
            MonitorChange::Missed
        } else {
            MonitorChange::Touched(ids)
        })
    }
}
