//! Cloud Eye (CES) v1 metric API over the probe results: `metric-data`,
//! `batch-query-metric-data` and `metrics`, namespace `SYS.VPN`.
//!
//! Metrics (docs/spec/vpn-v5.md §10): `link_average_latency`, `link_max_latency`,
//! `link_packet_loss_rate` under dimension `evpn_connection_id`, and the
//! same values as `public_*` under `vpn_connection_id`. A value is one per
//! probe window (`period=1`, raw) or a rollup of windows for the longer
//! periods; the filter (`average`, `max`, `min`, `sum`, `variance`) applies
//! across the windows of a bucket. Windows without any reply have no
//! latency, so they count for loss only.

use crate::authn::Caller;
use crate::error::ApiError;
use crate::error::Family;
use crate::json::{BodyRejection, HwJson, QueryParams};
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::ProjectId;
use domain::metric::{Filter, Measure, VpnMetric};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use store::{MeasurementStore, WindowPoint};

pub use domain::metric::NAMESPACE;
/// Periods CES accepts.
pub const PERIODS: [i64; 7] = [1, 60, 300, 1200, 3600, 14400, 86400];
/// Most datapoints one request returns.
pub const MAX_POINTS: usize = 3000;

fn bad(param: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::ces_invalid(format!("{param}: {msg}"))
}

fn metric(name: &str, param: &str) -> Result<VpnMetric, ApiError> {
    VpnMetric::parse(name).ok_or_else(|| {
        bad(
            param,
            format!(
                "unknown metric {name:?} in SYS.VPN (known: {})",
                VpnMetric::ALL.map(|m| m.name()).join(", ")
            ),
        )
    })
}

fn check_namespace(ns: &str, param: &str) -> Result<(), ApiError> {
    if ns.len() < 3 || ns.len() > 32 || !ns.contains('.') {
        return Err(bad(
            param,
            format!("{ns:?} is not a namespace like SYS.VPN"),
        ));
    }
    Ok(())
}

/// A filter's name, parsed for `param`, with its wire name.
fn filter(s: &str, param: &str) -> Result<(Filter, &'static str), ApiError> {
    Filter::parse(s).map(|f| (f, f.name())).ok_or_else(|| {
        bad(
            param,
            format!("{s:?} is not one of average, max, min, sum, variance"),
        )
    })
}

fn period(s: &str, param: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|p| PERIODS.contains(p))
        .ok_or_else(|| {
            bad(
                param,
                format!("{s:?} is not one of 1, 60, 300, 1200, 3600, 14400, 86400"),
            )
        })
}

fn time_range(from: i64, to: i64) -> Result<(), ApiError> {
    const LO: i64 = 1_111_111_111_111;
    const HI: i64 = 9_999_999_999_999;
    if !(LO..=HI).contains(&from) {
        return Err(bad(
            "from",
            format!("{from} is outside [{LO}, {HI}] (milliseconds)"),
        ));
    }
    if !(LO..=HI).contains(&to) {
        return Err(bad(
            "to",
            format!("{to} is outside [{LO}, {HI}] (milliseconds)"),
        ));
    }
    if from >= to {
        return Err(bad("from", "must be earlier than to"));
    }
    Ok(())
}

fn raw_value(measure: Measure, p: &WindowPoint) -> Option<f64> {
    match measure {
        Measure::Latency => p.rtt_avg_ms,
        Measure::MaxLatency => p.rtt_max_ms,
        Measure::Loss => Some(p.loss_pct),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Points of a series beyond which reading it is a heavy read.
const HEAVY_POINTS: i64 = 5_000;

/// What a query asks of every metric: the filter, the period and `[from, to)`.
#[derive(Clone, Copy)]
struct SeriesQuery {
    filter: Filter,
    period: i64,
    from: i64,
    to: i64,
}

/// Datapoints `(timestamp, value)` of one metric of one connection.
async fn datapoints(
    state: &AppState,
    project: &ProjectId,
    def: VpnMetric,
    connection: &str,
    span: SeriesQuery,
) -> Result<Vec<(i64, f64)>, ApiError> {
    let SeriesQuery {
        filter,
        period,
        from,
        to,
    } = span;
    let Some(conn) = domain::ConnectionId::parse(connection) else {
        return Ok(Vec::new());
    };
    // A long range (more than about 5 000 points: a year of hours, weeks
    // of raw windows) is a heavy read, one of a few at a time.
    let _turn = if (to - from) / (period.max(10) * 1000) > HEAVY_POINTS {
        Some(state.heavy_read().await?)
    } else {
        None
    };
    let monitors = state.store.list_monitors(project, Some(&conn)).await?;
    let Some(m) = monitors.first() else {
        return Ok(Vec::new());
    };
    if period == 1 {
        let pts = state.store.list_points(project, &m.id, from, to).await?;
        return Ok(pts
            .iter()
            .filter_map(|p| {
                raw_value(def.measure(), p).map(|v| {
                    (
                        p.window_start_ms,
                        if matches!(filter, Filter::Variance) {
                            0.0
                        } else {
                            v
                        },
                    )
                })
            })
            .collect());
    }
    let rollups =
        MeasurementStore::list_rollups(state.store.as_ref(), project, &m.id, period, from, to)
            .await?;
    Ok(rollups
        .iter()
        .filter_map(|r| {
            r.of(def.measure())
                .filtered(filter)
                .map(|v| (r.bucket_ms, v))
        })
        .collect())
}

fn dimension(q: &str, param: &str) -> Result<(String, String), ApiError> {
    let (k, v) = q.split_once(',').ok_or_else(|| {
        bad(
            param,
            format!("{q:?} is not key,value (e.g. evpn_connection_id,<id>)"),
        )
    })?;
    Ok((k.to_string(), v.to_string()))
}

/// `GET /V1.0/{project_id}/metric-data`.
pub async fn show_metric_data(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let need = |k: &str| q.get(k).ok_or_else(|| bad(k, "is required"));
    let ns = need("namespace")?;
    check_namespace(ns, "namespace")?;
    let name = need("metric_name")?;
    let (key, value) = dimension(need("dim.0")?, "dim.0")?;
    let (filter, fname) = filter(need("filter")?, "filter")?;
    let period = period(need("period")?, "period")?;
    let int = |k: &str| -> Result<i64, ApiError> {
        let v = need(k)?;
        v.parse::<i64>()
            .map_err(|_| bad(k, format!("{v:?} is not an integer (milliseconds)")))
    };
    let (from, to) = (int("from")?, int("to")?);
    time_range(from, to)?;
    let from = from.div_euclid(period * 1000) * period * 1000;
    let mut points = Vec::new();
    let mut unit = "";
    if ns == NAMESPACE {
        let def = metric(name, "metric_name")?;
        unit = def.unit();
        if key == def.dimension() {
            points = datapoints(
                &s,
                &c.project,
                def,
                &value,
                SeriesQuery {
                    filter,
                    period,
                    from,
                    to,
                },
            )
            .await?;
        } else if key != "evpn_connection_id" && key != "vpn_connection_id" {
            return Err(bad(
                "dim.0",
                format!(
                    "{key:?} is not a dimension of {name} (use {})",
                    def.dimension()
                ),
            ));
        }
    }
    if points.len() > MAX_POINTS {
        return Err(bad(
            "from",
            format!(
                "the range holds {} datapoints, more than {MAX_POINTS}; narrow it or use a longer period",
                points.len()
            ),
        ));
    }
    let dps: Vec<Value> = points
        .iter()
        .map(|(t, v)| {
            let mut m = Map::new();
            m.insert(fname.into(), json!(round3(*v)));
            m.insert("timestamp".into(), json!(t));
            m.insert("unit".into(), json!(unit));
            Value::Object(m)
        })
        .collect();
    Ok((
        StatusCode::OK,
        axum::Json(json!({"datapoints": dps, "metric_name": name})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    metrics: Vec<BatchMetric>,
    period: String,
    filter: String,
    from: i64,
    to: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchMetric {
    namespace: String,
    metric_name: String,
    dimensions: Vec<Dim>,
}

#[derive(Deserialize, serde::Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct Dim {
    name: String,
    value: String,
}

/// The longest window a batch query may span per period, in ms; `from` is
/// moved up to fit.
fn max_window_ms(period: i64) -> i64 {
    const H: i64 = 3_600_000;
    match period {
        1 => 4 * H,
        60 | 300 => 24 * H,
        1200 => 3 * 24 * H,
        3600 => 10 * 24 * H,
        14400 => 30 * 24 * H,
        _ => 180 * 24 * H,
    }
}

/// `POST /V1.0/{project_id}/batch-query-metric-data`.
pub async fn batch_query(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    body: Result<HwJson<BatchBody>, BodyRejection>,
) -> Result<Response, ApiError> {
    let HwJson(b) = body.map_err(|r| r.in_family(Family::Ces))?;
    if b.metrics.is_empty() || b.metrics.len() > 500 {
        return Err(bad(
            "metrics",
            format!("must hold 1 to 500 metrics, got {}", b.metrics.len()),
        ));
    }
    let period = period(&b.period, "period")?;
    let (filter, fname) = filter(&b.filter, "filter")?;
    time_range(b.from, b.to)?;
    let from = b.from.max(b.to - max_window_ms(period));
    let from = from.div_euclid(period * 1000) * period * 1000;
    let mut out = Vec::with_capacity(b.metrics.len());
    let mut total = 0usize;
    for (i, m) in b.metrics.iter().enumerate() {
        check_namespace(&m.namespace, &format!("metrics[{i}].namespace"))?;
        if m.dimensions.is_empty() || m.dimensions.len() > 4 {
            return Err(bad(
                &format!("metrics[{i}].dimensions"),
                "must hold 1 to 4 dimensions",
            ));
        }
        let mut unit = "";
        let mut points = Vec::new();
        if m.namespace == NAMESPACE {
            let def = metric(&m.metric_name, &format!("metrics[{i}].metric_name"))?;
            unit = def.unit();
            if let Some(d) = m.dimensions.iter().find(|d| d.name == def.dimension()) {
                points = datapoints(
                    &s,
                    &c.project,
                    def,
                    &d.value,
                    SeriesQuery {
                        filter,
                        period,
                        from,
                        to: b.to,
                    },
                )
                .await?;
            }
        }
        total += points.len();
        if total > MAX_POINTS {
            return Err(bad(
                "metrics",
                format!(
                    "the query holds more than {MAX_POINTS} datapoints; query fewer metrics, a shorter range or a longer period"
                ),
            ));
        }
        let dps: Vec<Value> = points
            .iter()
            .map(|(t, v)| {
                let mut o = Map::new();
                o.insert(fname.into(), json!(round3(*v)));
                o.insert("timestamp".into(), json!(t));
                Value::Object(o)
            })
            .collect();
        out.push(
            json!({"namespace": m.namespace, "metric_name": m.metric_name, "unit": unit,
                        "dimensions": m.dimensions, "datapoints": dps}),
        );
    }
    Ok((StatusCode::OK, axum::Json(json!({"metrics": out}))).into_response())
}

/// `GET /V1.0/{project_id}/metrics`: the metrics of every connection that
/// has a monitor, ordered by `namespace.metric_name.key:value`, with a cursor.
pub async fn list_metrics(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let limit = match q.get("limit") {
        None => 1000,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                bad(
                    "limit",
                    format!("{v:?} is not an integer between 1 and 1000"),
                )
            })?,
    };
    let desc = match q.get("order") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => return Err(bad("order", format!("{o:?} is not asc or desc"))),
    };
    if let Some(ns) = q.get("namespace") {
        check_namespace(ns, "namespace")?;
    }
    let dim = q.get("dim.0").map(|d| dimension(d, "dim.0")).transpose()?;
    let monitors = s.store.list_monitors(&c.project, None).await?;
    let mut all: Vec<(String, VpnMetric, String)> = Vec::new();
    if q.get("namespace").is_none_or(|n| n == NAMESPACE) {
        for m in &monitors {
            for def in VpnMetric::ALL {
                if q.get("metric_name").is_some_and(|n| n != def.name()) {
                    continue;
                }
                if let Some((k, v)) = &dim
                    && (k != def.dimension() || m.vpn_connection_id != *v)
                {
                    continue;
                }
                let cursor = format!(
                    "{NAMESPACE}.{}.{}:{}",
                    def.name(),
                    def.dimension(),
                    m.vpn_connection_id
                );
                all.push((cursor, def, m.vpn_connection_id.to_string()));
            }
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    if desc {
        all.reverse();
    }
    let total = all.len();
    let start = q.get("start");
    let page: Vec<_> = all
        .into_iter()
        .filter(|(cur, _, _)| match start {
            None => true,
            Some(st) if desc => cur.as_str() < st,
            Some(st) => cur.as_str() > st,
        })
        .take(limit)
        .collect();
    let marker = page.last().map(|p| p.0.clone()).unwrap_or_default();
    let metrics: Vec<Value> = page
        .iter()
        .map(|(_, def, conn)| {
            json!({"namespace": NAMESPACE, "metric_name": def.name(), "unit": def.unit(),
                   "dimensions": [{"name": def.dimension(), "value": conn}]})
        })
        .collect();
    let count = metrics.len();
    Ok((
        StatusCode::OK,
        axum::Json(json!({"metrics": metrics, "meta_data": {"count": count, "marker": marker, "total": total}})),
    )
        .into_response())
}
