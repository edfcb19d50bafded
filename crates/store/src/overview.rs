//! The dashboard's overview: every monitor of a project with what a table
//! row shows (its connection's name, link state, newest window), in two
//! queries however many monitors there are.
//!
//! The newest window is looked for in a recent time range only
//! (`since_ms`): raw datapoints are keyed time-major (see
//! the `buckets` module of the SQL store), so "the newest window of every monitor" is one
//! contiguous scan of the last few buckets, grouped by monitor, instead of
//! one lookup per monitor. A monitor without a window in that range has
//! none to show (it is not being probed, or vpnmon was down).
//!
//! Each row also carries a summary of the alarm rules on its connection
//! (a third query, over the project's rules).

use crate::Result;
use crate::measurements::WindowPoint;
use crate::probing::LinkState;
use crate::sql::{SqlStore, buckets, get, get_id, internal};
use async_trait::async_trait;
use domain::alarm::AlarmState;
use domain::{MonitorId, ProjectId};
use std::collections::HashMap;

/// One monitor as the overview shows it: a row of text for a table (its
/// ids as the wire shows them).
#[derive(Debug, Clone, PartialEq)]
pub struct OverviewRow {
    pub monitor_id: String,
    pub vpn_connection_id: String,
    /// The connection's `name`.
    pub connection_name: String,
    pub source_ip: String,
    pub destination_ip: String,
    pub status: String,
    pub link: LinkState,
    /// The newest window that started at or after `since_ms`.
    pub last: Option<WindowPoint>,
    /// The alarm rules on the monitor's connection.
    pub alarms: AlarmSummary,
}

/// How many alarm rules watch a connection, and in which states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmSummary {
    /// Every rule on the connection, enabled or not.
    pub rules: u32,
    /// The enabled ones (a disabled rule keeps a state that says nothing).
    pub enabled: u32,
    /// Enabled rules in `alarm`.
    pub alarm: u32,
    /// Enabled rules in `insufficient_data`.
    pub insufficient_data: u32,
}

impl AlarmSummary {
    /// The connection's alarm state as one word: `alarm` if any enabled
    /// rule is in alarm, else `insufficient_data` if any lacks data, else
    /// `ok`; `disabled` when every rule is disabled; `None` without rules.
    pub fn state(&self) -> Option<&'static str> {
        self.worst().map(|w| match w {
            Worst::Alarm => "alarm",
            Worst::InsufficientData => "insufficient_data",
            Worst::Ok => "ok",
            Worst::Disabled => "disabled",
        })
    }

    /// The same state as an order, worst last (for sorting).
    pub fn worst(&self) -> Option<Worst> {
        Some(if self.rules == 0 {
            return None;
        } else if self.alarm > 0 {
            Worst::Alarm
        } else if self.insufficient_data > 0 {
            Worst::InsufficientData
        } else if self.enabled > 0 {
            Worst::Ok
        } else {
            Worst::Disabled
        })
    }
}

/// A connection's alarm state over its rules, from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Worst {
    Disabled,
    Ok,
    InsufficientData,
    Alarm,
}

/// The overview query, a capability of its own.
#[async_trait]
pub trait OverviewStore: Send + Sync {
    /// Every monitor of project `p` (in creation order) with its newest
    /// window that started at or after `since_ms`.
    async fn overview(&self, p: &ProjectId, since_ms: i64) -> Result<Vec<OverviewRow>>;
}

#[async_trait]
impl OverviewStore for SqlStore {
    async fn overview(&self, p: &ProjectId, since_ms: i64) -> Result<Vec<OverviewRow>> {
        let rows = sqlx::query(
            "SELECT m.id, m.vpn_connection_id, m.status, m.body, m.link_up, m.link_changed_us, \
               m.probe_note, c.body AS conn_body \
             FROM connection_monitors m JOIN vpn_connections c ON c.id = m.vpn_connection_id \
             WHERE m.project_id = $1 ORDER BY m.created_us, m.id",
        )
        .bind(p.as_str().to_string())
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        // The newest window per monitor: one range scan of the recent
        // buckets, grouped, joined back on the key.
        let bucket = buckets::point_bucket(since_ms);
        let points = sqlx::query(
            "SELECT t.monitor_id, t.project_id, t.window_start_ms, t.sent, t.received, t.loss_pct, \
               t.rtt_min_ms, t.rtt_avg_ms, t.rtt_max_ms, t.jitter_ms \
             FROM monitor_points t JOIN \
               (SELECT monitor_id, MAX(window_start_ms) AS w FROM monitor_points \
                WHERE bucket_ms >= $1 AND project_id = $2 AND window_start_ms >= $3 \
                GROUP BY monitor_id) l \
               ON t.monitor_id = l.monitor_id AND t.window_start_ms = l.w \
             WHERE t.bucket_ms >= $1 AND t.project_id = $2",
        )
        .bind(bucket)
        .bind(p.as_str().to_string())
        .bind(since_ms)
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        let mut last: HashMap<MonitorId, WindowPoint> = HashMap::with_capacity(points.len());
        for r in &points {
            let w = crate::sql::window_point_from_row(r)?;
            last.insert(w.monitor_id, w);
        }
        let rules =
            sqlx::query("SELECT connection_id, enabled, state FROM alarms WHERE project_id = $1")
                .bind(p.as_str().to_string())
                .fetch_all(&self.read)
                .await
                .map_err(internal)?;
        let mut alarms: HashMap<String, AlarmSummary> = HashMap::new();
        for r in &rules {
            let a = alarms.entry(get(r, "connection_id")?).or_default();
            a.rules += 1;
            if get::<i64>(r, "enabled")? != 0 {
                a.enabled += 1;
                match AlarmState::parse(&get::<String>(r, "state")?) {
                    Some(AlarmState::Alarm) => a.alarm += 1,
                    Some(AlarmState::InsufficientData) => a.insufficient_data += 1,
                    _ => {}
                }
            }
        }
        rows.iter()
            .map(|r| {
                let id: MonitorId = get_id(r, "id")?;
                let body = json_value(&get::<String>(r, "body")?)?;
                let conn = json_value(&get::<String>(r, "conn_body")?)?;
                let text = |v: &serde_json::Value, k: &str| {
                    v.get(k)
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                let vpn_connection_id: String = get(r, "vpn_connection_id")?;
                Ok(OverviewRow {
                    alarms: alarms.get(&vpn_connection_id).copied().unwrap_or_default(),
                    vpn_connection_id,
                    connection_name: text(&conn, "name"),
                    source_ip: text(&body, "source_ip"),
                    destination_ip: text(&body, "destination_ip"),
                    status: get(r, "status")?,
                    link: LinkState {
                        up: get::<Option<i64>>(r, "link_up")?.map(|v| v != 0),
                        changed_us: get(r, "link_changed_us")?,
                        note: get(r, "probe_note")?,
                    },
                    last: last.remove(&id),
                    monitor_id: id.to_string(),
                })
            })
            .collect()
    }
}

fn json_value(body: &str) -> Result<serde_json::Value> {
    serde_json::from_str(body)
        .map_err(|e| domain::DomainError::Internal(format!("stored record is not JSON: {e}")))
}
