//! `monitor stats`: a monitor's latency and loss per period, read from the
//! Cloud Eye metric API (`GET /V1.0/{project_id}/metric-data`) the way any
//! CES client would: one query per metric, dimension
//! `evpn_connection_id,<the monitor's connection>`.

use crate::OutputFormat;
use crate::resources::{self, Kind};
use crate::session::{Api, Session};
use crate::table::Table;
use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Utc};
use domain::monitor::ConnectionMonitor;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Periods the metric API accepts, in seconds.
pub const PERIODS: [i64; 7] = [1, 60, 300, 1200, 3600, 14400, 86400];

/// The metrics read, with the filter applied across a period's windows.
const METRICS: [(&str, &str); 3] = [
    ("link_average_latency", "average"),
    ("link_max_latency", "max"),
    ("link_packet_loss_rate", "average"),
];

/// One period (or raw window) of a monitor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Start of the period, ms since the epoch.
    pub ts: i64,
    /// Average round trip, ms (none when nothing came back).
    pub avg: Option<f64>,
    /// Largest round trip, ms.
    pub max: Option<f64>,
    /// Packet loss, percent.
    pub loss: Option<f64>,
}

impl Point {
    /// The point as a JSON object with the metric names as keys.
    pub fn json(&self) -> Value {
        json!({
            "timestamp": self.ts,
            "time": fmt_ms(self.ts),
            "link_average_latency": self.avg,
            "link_max_latency": self.max,
            "link_packet_loss_rate": self.loss,
        })
    }
}

/// The monitor facts `stats` and `watch` need.
pub struct MonitorInfo {
    pub id: String,
    pub connection: String,
    pub source: String,
    pub destination: String,
    pub status: String,
}

/// Looks the monitor up (its connection is the metric dimension).
pub async fn monitor_info(s: &mut Session, id: &str) -> Result<MonitorInfo> {
    let v = resources::get(s, Kind::Monitor, id).await?;
    let m: ConnectionMonitor = resources::typed(Kind::Monitor, &v)?;
    Ok(MonitorInfo {
        id: m.id.to_string(),
        connection: m.vpn_connection_id.to_string(),
        source: m.source_ip,
        destination: m.destination_ip,
        status: m.status,
    })
}

/// The datapoints of the three link metrics in `[from_ms, to_ms)`, joined
/// by timestamp.
pub async fn fetch(
    s: &mut Session,
    connection: &str,
    period: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Point>> {
    let mut points: BTreeMap<i64, Point> = BTreeMap::new();
    for (i, (metric, filter)) in METRICS.iter().enumerate() {
        let q = [
            ("namespace", "SYS.VPN".to_string()),
            ("metric_name", metric.to_string()),
            ("dim.0", format!("evpn_connection_id,{connection}")),
            ("filter", filter.to_string()),
            ("period", period.to_string()),
            ("from", from_ms.to_string()),
            ("to", to_ms.to_string()),
        ];
        let body = s
            .call(Method::GET, Api::Ces, "metric-data", &q, None)
            .await?
            .ok_or_else(|| anyhow!("metric-data answered with an empty body"))?;
        let dps = body
            .get("datapoints")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("metric-data answered without datapoints"))?;
        for d in dps {
            let (Some(ts), Some(v)) = (
                d.get("timestamp").and_then(Value::as_i64),
                d.get(*filter).and_then(Value::as_f64),
            ) else {
                continue;
            };
            let p = points.entry(ts).or_insert(Point {
                ts,
                ..Point::default()
            });
            match i {
                0 => p.avg = Some(v),
                1 => p.max = Some(v),
                _ => p.loss = Some(v),
            }
        }
    }
    Ok(points.into_values().collect())
}

/// The period that gives a readable number of rows for a range.
pub fn default_period(since: Duration) -> i64 {
    let s = since.as_secs();
    match s {
        0..=900 => 1,
        901..=21_600 => 60,
        21_601..=86_400 => 300,
        86_401..=259_200 => 1200,
        259_201..=864_000 => 3600,
        864_001..=5_184_000 => 14400,
        _ => 86400,
    }
}

/// A time in ms as RFC 3339 UTC to the second (to the ms when not whole).
pub fn fmt_ms(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) if ms % 1000 == 0 => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// A value with `digits` decimals, `-` when absent.
pub fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// The stats table.
pub fn table(points: &[Point]) -> Table {
    let mut t = Table::new(["TIME", "LATENCY_AVG_MS", "LATENCY_MAX_MS", "LOSS_PCT"]);
    for p in points {
        t.row([fmt_ms(p.ts), num(p.avg, 3), num(p.max, 3), num(p.loss, 1)]);
    }
    t
}

/// `monitor stats ID --since D [--period P]`.
pub async fn run(
    s: &mut Session,
    id: &str,
    since: Duration,
    period: Option<i64>,
    out: OutputFormat,
) -> Result<()> {
    let period = period.unwrap_or_else(|| default_period(since));
    if !PERIODS.contains(&period) {
        bail!("--period must be one of 1, 60, 300, 1200, 3600, 14400, 86400 (seconds)");
    }
    let m = monitor_info(s, id).await?;
    let to = Utc::now().timestamp_millis();
    let since_ms = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
    let from = to.saturating_sub(since_ms);
    let points = fetch(s, &m.connection, period, from, to).await?;
    match out {
        OutputFormat::Json => {
            let v = json!({
                "connection_monitor_id": m.id,
                "vpn_connection_id": m.connection,
                "source_ip": m.source,
                "destination_ip": m.destination,
                "period": period,
                "from": from,
                "to": to,
                "datapoints": points.iter().map(Point::json).collect::<Vec<_>>(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
        }
        OutputFormat::Table => {
            table(&points).print();
            let what = match points.len() {
                0 => "no datapoints".to_string(),
                1 => "1 datapoint".to_string(),
                n => format!("{n} datapoints"),
            };
            println!(
                "{what} for monitor {} ({} -> {}), period {period}s, {} to {}",
                m.id,
                m.source,
                m.destination,
                fmt_ms(from),
                fmt_ms(to)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_period_keeps_tables_short() {
        assert_eq!(default_period(Duration::from_secs(300)), 1);
        assert_eq!(default_period(Duration::from_secs(3600)), 60);
        assert_eq!(default_period(Duration::from_secs(86_400)), 300);
        assert_eq!(default_period(Duration::from_secs(7 * 86_400)), 3600);
        assert_eq!(default_period(Duration::from_secs(365 * 86_400)), 86400);
        for d in [1u64, 900, 3600, 86_400, 30 * 86_400] {
            assert!(PERIODS.contains(&default_period(Duration::from_secs(d))));
        }
    }

    #[test]
    fn rows_show_missing_latency_as_a_dash() {
        let pts = [
            Point {
                ts: 1_764_139_560_000,
                avg: Some(0.0523),
                max: Some(0.08),
                loss: Some(0.0),
            },
            Point {
                ts: 1_764_139_620_500,
                avg: None,
                max: None,
                loss: Some(100.0),
            },
        ];
        assert_eq!(
            table(&pts).render(),
            "TIME                      LATENCY_AVG_MS  LATENCY_MAX_MS  LOSS_PCT\n\
             2025-11-26T06:46:00Z      0.052           0.080           0.0\n\
             2025-11-26T06:47:00.500Z  -               -               100.0\n"
        );
    }
}
