//! `GET /vpnmon/{project_id}/overview`: the dashboard's monitor table, one
//! page of it, sorted and filtered by the server so that it stays usable at
//! 10 000 monitors. vpnmon's own path, outside `/v5` (like `.../state`).
//!
//! Query parameters (all optional):
//! - `sort`: `connection` (name, the default), `source`, `destination`,
//!   `status`, `link`, `since` (when the link state last changed),
//!   `rtt_avg`, `rtt_max`, `loss`, `jitter` (of the newest window),
//!   `alarm` (the alarm state of the connection's rules: `alarm` >
//!   `insufficient_data` > `ok` > `disabled`, no rules last);
//! - `order`: `asc` (default) or `desc`; monitors without a value for the
//!   sort key come last in both orders, ties go by monitor id;
//! - `limit` 1..=200 (default 50), `offset` (default 0);
//! - `q`: case-insensitive substring of the connection name or id, the
//!   monitor id, the source or destination address, the status, or the
//!   alarm state.
//!
//! Each row carries the same fields as the monitor's `.../state` (status,
//! link, newest window of the last [`LAST_WINDOW_MS`]) plus the
//! connection's name, a sparkline of the last hour (the 60 s rollups the
//! CES API serves for `period=60`: same store query, same `average`) and
//! `alarm`: null when no rule watches the connection, else `{"state",
//! "rules", "enabled", "in_alarm"}` of its rules (the states CES shows).

use crate::authn::Caller;
use crate::context::ReqId;
use crate::error::ApiError;
use crate::json::QueryParams;
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::cmp::Ordering;
use store::{MeasurementStore, OverviewRow, OverviewStore};

/// How far back the newest window is looked for.
pub const LAST_WINDOW_MS: i64 = 3 * 60_000;
/// The sparkline's span and period.
pub const SPARKLINE_MS: i64 = 3_600_000;
const SPARKLINE_PERIOD_S: i64 = 60;
/// Most rows one page holds.
pub const MAX_LIMIT: i64 = 200;

/// A column the overview sorts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Connection,
    Source,
    Destination,
    Status,
    Link,
    Since,
    RttAvg,
    RttMax,
    Loss,
    Jitter,
    Alarm,
}

impl SortKey {
    /// Parses the `sort` parameter.
    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "connection" => SortKey::Connection,
            "source" => SortKey::Source,
            "destination" => SortKey::Destination,
            "status" => SortKey::Status,
            "link" => SortKey::Link,
            "since" => SortKey::Since,
            "rtt_avg" => SortKey::RttAvg,
            "rtt_max" => SortKey::RttMax,
            "loss" => SortKey::Loss,
            "jitter" => SortKey::Jitter,
            "alarm" => SortKey::Alarm,
            _ => return None,
        })
    }
}

enum Key<'a> {
    Text(&'a str),
    Num(Option<f64>),
}

fn key(r: &OverviewRow, k: SortKey) -> Key<'_> {
    let last = r.last.as_ref();
    match k {
        SortKey::Connection => Key::Text(&r.connection_name),
        SortKey::Source => Key::Text(&r.source_ip),
        SortKey::Destination => Key::Text(&r.destination_ip),
        SortKey::Status => Key::Text(&r.status),
        // down < up; unknown last.
        SortKey::Link => Key::Num(r.link.up.map(|u| if u { 1.0 } else { 0.0 })),
        SortKey::Since => Key::Num(r.link.changed_us.map(|v| v as f64)),
        SortKey::RttAvg => Key::Num(last.and_then(|p| p.rtt_avg_ms)),
        SortKey::RttMax => Key::Num(last.and_then(|p| p.rtt_max_ms)),
        SortKey::Loss => Key::Num(last.map(|p| p.loss_pct)),
        SortKey::Jitter => Key::Num(last.and_then(|p| p.jitter_ms)),
        SortKey::Alarm => Key::Num(r.alarms.worst().map(|w| w as u8 as f64)),
    }
}

/// Sorts rows by `k` (descending when `desc`); rows without a value come
/// last either way, ties go by monitor id.
pub fn sort_rows(rows: &mut [OverviewRow], k: SortKey, desc: bool) {
    rows.sort_by(|a, b| {
        let o = match (key(a, k), key(b, k)) {
            (Key::Text(x), Key::Text(y)) => {
                let o = x.to_lowercase().cmp(&y.to_lowercase());
                if desc { o.reverse() } else { o }
            }
            (Key::Num(x), Key::Num(y)) => match (x, y) {
                (Some(x), Some(y)) => {
                    let o = x.total_cmp(&y);
                    if desc { o.reverse() } else { o }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            _ => Ordering::Equal,
        };
        o.then_with(|| a.monitor_id.cmp(&b.monitor_id))
    });
}

/// Whether a row matches the search text (already lowercased).
pub fn matches(r: &OverviewRow, q: &str) -> bool {
    q.is_empty()
        || [
            r.connection_name.as_str(),
            &r.vpn_connection_id,
            &r.monitor_id,
            &r.source_ip,
            &r.destination_ip,
            &r.status,
            r.alarms.state().unwrap_or_default(),
        ]
        .iter()
        .any(|f| f.to_lowercase().contains(q))
}

fn window_json(p: &store::WindowPoint) -> Value {
    json!({"window_start": p.window_start_ms, "sent": p.sent, "received": p.received,
           "loss_pct": p.loss_pct, "rtt_min_ms": p.rtt_min_ms, "rtt_avg_ms": p.rtt_avg_ms,
           "rtt_max_ms": p.rtt_max_ms, "jitter_ms": p.jitter_ms})
}

/// `GET` one page of the overview.
pub async fn show(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let sort = match q.get("sort") {
        None => SortKey::Connection,
        Some(v) => SortKey::parse(v).ok_or_else(|| {
            ApiError::invalid(format!(
                "sort must be one of connection, source, destination, status, link, since, \
                 rtt_avg, rtt_max, loss, jitter, alarm, got {v:?}"
            ))
        })?,
    };
    let desc = match q.get("order") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "order must be asc or desc, got {o:?}"
            )));
        }
    };
    let limit = q.int("limit", 1, MAX_LIMIT)?.unwrap_or(50);
    let offset = q.int("offset", 0, i64::MAX)?.unwrap_or(0);
    let needle = q.get("q").unwrap_or("").trim().to_lowercase();

    let now = s.now().timestamp_millis();
    let mut rows =
        OverviewStore::overview(s.store.as_ref(), &c.project, now - LAST_WINDOW_MS).await?;
    rows.retain(|r| matches(r, &needle));
    let total = rows.len();
    sort_rows(&mut rows, sort, desc);
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
    let end = start.saturating_add(limit as usize).min(total);

    let from =
        (now - SPARKLINE_MS).div_euclid(SPARKLINE_PERIOD_S * 1000) * SPARKLINE_PERIOD_S * 1000;
    let mut items = Vec::with_capacity(end - start);
    for r in &rows[start..end] {
        let Some(monitor) = domain::MonitorId::parse(&r.monitor_id) else {
            continue;
        };
        let rollups = MeasurementStore::list_rollups(
            s.store.as_ref(),
            &c.project,
            &monitor,
            SPARKLINE_PERIOD_S,
            from,
            now,
        )
        .await?;
        let spark = json!({
            "period": SPARKLINE_PERIOD_S,
            "timestamps": rollups.iter().map(|b| b.bucket_ms).collect::<Vec<_>>(),
            "rtt_avg_ms": rollups.iter().map(|b| b.latency.average()).collect::<Vec<_>>(),
            "loss_pct": rollups.iter().map(|b| b.loss.average()).collect::<Vec<_>>(),
        });
        items.push(json!({
            "id": r.monitor_id,
            "vpn_connection_id": r.vpn_connection_id,
            "connection_name": r.connection_name,
            "source_ip": r.source_ip,
            "destination_ip": r.destination_ip,
            "status": r.status,
            "link": {
                "up": r.link.up,
                "changed_at": r.link.changed_us
                    .map(|us| domain::time::wire_ms(domain::time::from_micros(us))),
            },
            "not_probed_reason": r.link.note,
            "last_window": r.last.as_ref().map(window_json),
            "sparkline": spark,
            "alarm": r.alarms.state().map(|state| json!({
                "state": state,
                "rules": r.alarms.rules,
                "enabled": r.alarms.enabled,
                "in_alarm": r.alarms.alarm,
            })),
        }));
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "monitors": items,
            "total_count": total,
            "offset": start,
            "limit": limit,
            "request_id": rid,
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{LinkState, WindowPoint};

    fn row(id: &str, name: &str, loss: Option<f64>) -> OverviewRow {
        OverviewRow {
            monitor_id: id.into(),
            vpn_connection_id: format!("conn-{id}"),
            connection_name: name.into(),
            source_ip: "127.0.0.2".into(),
            destination_ip: "127.0.0.10".into(),
            status: "ACTIVE".into(),
            link: LinkState::default(),
            alarms: store::AlarmSummary::default(),
            last: loss.map(|l| WindowPoint {
                monitor_id: domain::MonitorId::random(),
                project_id: domain::ProjectId::generate(),
                window_start_ms: 0,
                sent: 3,
                received: 3,
                loss_pct: l,
                rtt_min_ms: None,
                rtt_avg_ms: None,
                rtt_max_ms: None,
                jitter_ms: None,
            }),
        }
    }

    fn ids(rows: &[OverviewRow]) -> Vec<&str> {
        rows.iter().map(|r| r.monitor_id.as_str()).collect()
    }

    #[test]
    fn rows_without_a_value_sort_last_in_both_orders() {
        let mut rows = vec![
            row("a", "x", None),
            row("b", "y", Some(50.0)),
            row("c", "z", Some(0.0)),
            row("d", "w", Some(50.0)),
        ];
        sort_rows(&mut rows, SortKey::Loss, true);
        assert_eq!(ids(&rows), ["b", "d", "c", "a"]);
        sort_rows(&mut rows, SortKey::Loss, false);
        assert_eq!(ids(&rows), ["c", "b", "d", "a"]);
    }

    #[test]
    fn text_sorts_ignore_case_and_search_matches_any_field() {
        let mut rows = vec![row("a", "beta", None), row("b", "Alpha", None)];
        sort_rows(&mut rows, SortKey::Connection, false);
        assert_eq!(ids(&rows), ["b", "a"]);
        assert!(matches(&rows[0], "alp"));
        assert!(matches(&rows[0], "conn-b"));
        assert!(matches(&rows[0], "127.0.0.10"));
        assert!(!matches(&rows[0], "beta"));
        assert!(matches(&rows[0], ""));
    }

    #[test]
    fn unknown_sort_keys_are_refused() {
        assert_eq!(SortKey::parse("loss"), Some(SortKey::Loss));
        assert_eq!(SortKey::parse("LOSS"), None);
    }
}
