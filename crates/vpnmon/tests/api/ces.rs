//! The Cloud Eye (CES) metric API (docs/spec/vpn-v5.md §7.2, decisions §10) over
//! datapoints written through the store: raw windows for `period=1`,
//! rollups (`MetricStore::roll_up`) for the longer periods. Every expected
//! aggregate below is computed by hand from the windows in [`WINDOWS`].

use crate::helpers::{Resp, TestApp, keys, uuid};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::WindowPoint;
use store::prelude::*;

const HOUR_MS: i64 = 3_600_000;

/// A window: (offset from the base in s, sent, received, avg RTT, max RTT).
type Window = (i64, i64, i64, Option<f64>, Option<f64>);

/// Windows of the main monitor; loss is `(sent - received) / sent * 100`.
/// Buckets of 60 s: [0,60) four windows (one fully lost), [60,120) two,
/// [180,240) one fully lost window only, [300,360) one, [540,600) one.
/// Buckets of 300 s: [0,300) seven windows, [300,600) two.
const WINDOWS: [Window; 9] = [
    (0, 4, 4, Some(2.0), Some(3.0)),
    (10, 4, 3, Some(4.0), Some(6.0)),
    (20, 4, 0, None, None),
    (30, 4, 4, Some(6.0), Some(7.0)),
    (60, 4, 2, Some(1.5), Some(2.5)),
    (70, 4, 4, Some(2.5), Some(3.5)),
    (200, 4, 0, None, None),
    (300, 4, 4, Some(10.0), Some(12.0)),
    (590, 4, 1, Some(20.0), Some(20.0)),
];

const FILTERS: [&str; 5] = ["average", "max", "min", "sum", "variance"];

/// Metric names per family: (latency, max latency, loss) and their dimension.
const FAMILIES: [([&str; 3], &str); 2] = [
    (
        [
            "link_average_latency",
            "link_max_latency",
            "link_packet_loss_rate",
        ],
        "evpn_connection_id",
    ),
    (
        [
            "public_average_latency",
            "public_max_latency",
            "public_packet_loss_rate",
        ],
        "vpn_connection_id",
    ),
];

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `now - ago`, aligned down to 300 s (a whole minute in the past).
fn aligned_ago(ago_ms: i64) -> i64 {
    (now_ms() - ago_ms).div_euclid(300_000) * 300_000
}

fn point(
    app: &TestApp,
    monitor: &str,
    t_ms: i64,
    sent: i64,
    received: i64,
    avg: Option<f64>,
    max: Option<f64>,
) -> WindowPoint {
    WindowPoint {
        monitor_id: domain::MonitorId::parse(monitor).unwrap(),
        project_id: domain::ProjectId::parse(&app.project_id).unwrap(),
        window_start_ms: t_ms,
        sent,
        received,
        loss_pct: (sent - received) as f64 * 100.0 / sent as f64,
        rtt_min_ms: avg,
        rtt_avg_ms: avg,
        rtt_max_ms: max,
        jitter_ms: avg.map(|_| 0.0),
    }
}

async fn insert(app: &TestApp, points: &[WindowPoint]) {
    for chunk in points.chunks(500) {
        app.store.insert_points(chunk).await.unwrap();
    }
}

async fn roll_up(app: &TestApp, periods: &[i64]) {
    for p in periods {
        MeasurementStore::roll_up(app.store.as_ref(), *p, now_ms())
            .await
            .unwrap();
    }
}

/// A second gateway + customer gateway + connection, without a monitor.
async fn bare_connection(app: &TestApp, cgw_addr: &str) -> String {
    let (g, e, _) = app.gateway().await;
    let c = app.cgw(cgw_addr).await;
    app.connection(&g, &e, &c).await
}

fn ces(project: &str, rest: &str) -> String {
    format!("/V1.0/{project}{rest}")
}

async fn ces_get(app: &TestApp, token: &str, project: &str, rest: &str) -> Resp {
    app.send(Method::GET, &ces(project, rest), Some(token), None)
        .await
}

async fn metric_data_raw(app: &TestApp, query: &str) -> Resp {
    ces_get(
        app,
        &app.token,
        &app.project_id,
        &format!("/metric-data?{query}"),
    )
    .await
}

async fn batch(app: &TestApp, body: Value) -> Resp {
    app.send(
        Method::POST,
        &ces(&app.project_id, "/batch-query-metric-data"),
        Some(&app.token),
        Some(body),
    )
    .await
}

fn unit_of(metric: &str) -> &'static str {
    if metric.ends_with("loss_rate") {
        "%"
    } else {
        "ms"
    }
}

fn query(
    metric: &str,
    key: &str,
    conn: &str,
    filter: &str,
    period: i64,
    from: i64,
    to: i64,
) -> String {
    format!(
        "namespace=SYS.VPN&metric_name={metric}&dim.0={key},{conn}&filter={filter}&period={period}&from={from}&to={to}"
    )
}

/// metric-data for one metric: checks 200, the echoed name and that each
/// point holds exactly the filter, `timestamp` and the metric's unit;
/// returns (timestamp, value).
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per CES query parameter"
)]
async fn metric_data(
    app: &TestApp,
    metric: &str,
    key: &str,
    conn: &str,
    filter: &str,
    period: i64,
    from: i64,
    to: i64,
) -> Vec<(i64, f64)> {
    let r = metric_data_raw(app, &query(metric, key, conn, filter, period, from, to)).await;
    assert_eq!(r.status, StatusCode::OK, "{metric} {filter}: {}", r.raw);
    assert_eq!(keys(&r.body), ["datapoints", "metric_name"], "{}", r.raw);
    assert_eq!(r.body["metric_name"], metric);
    let mut want_keys = vec![filter.to_string(), "timestamp".into(), "unit".into()];
    want_keys.sort();
    r.body["datapoints"]
        .as_array()
        .expect("datapoints is a list")
        .iter()
        .map(|p| {
            assert_eq!(keys(p), want_keys, "{metric} {filter}: {}", r.raw);
            assert_eq!(p["unit"], unit_of(metric), "{}", r.raw);
            (
                p["timestamp"].as_i64().expect("integer timestamp"),
                p[filter].as_f64().expect("numeric value"),
            )
        })
        .collect()
}

/// The seeded app with [`WINDOWS`] stored for its monitor (base = a
/// 300 s boundary three hours ago), plus a second monitored connection with
/// very different values at the same times (they must never mix in), all
/// rolled up for 60 and 300 s.
struct Fixture {
    app: TestApp,
    conn: String,
    other_conn: String,
    base: i64,
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    let (_, _, conn, mon) = app.seed().await;
    let other_conn = bare_connection(&app, "127.0.0.11").await;
    let other_mon = app.monitor(&other_conn).await;
    let base = aligned_ago(3 * HOUR_MS);
    let mut pts: Vec<WindowPoint> = WINDOWS
        .iter()
        .map(|&(s, sent, recv, avg, max)| point(&app, &mon, base + s * 1000, sent, recv, avg, max))
        .collect();
    pts.extend(WINDOWS.iter().map(|&(s, _, _, _, _)| {
        point(
            &app,
            &other_mon,
            base + s * 1000,
            3,
            3,
            Some(900.0),
            Some(950.0),
        )
    }));
    insert(&app, &pts).await;
    roll_up(&app, &[60, 300]).await;
    Fixture {
        app,
        conn,
        other_conn,
        base,
    }
}

#[tokio::test]
async fn metric_data_period_1_returns_each_raw_window() {
    let f = fixture().await;
    let (from, to) = (f.base, f.base + 600_000);
    let at = |s: i64| f.base + s * 1000;
    // Latency metrics skip the windows without a reply (offsets 20 and 200).
    let avg = vec![
        (at(0), 2.0),
        (at(10), 4.0),
        (at(30), 6.0),
        (at(60), 1.5),
        (at(70), 2.5),
        (at(300), 10.0),
        (at(590), 20.0),
    ];
    let max = vec![
        (at(0), 3.0),
        (at(10), 6.0),
        (at(30), 7.0),
        (at(60), 2.5),
        (at(70), 3.5),
        (at(300), 12.0),
        (at(590), 20.0),
    ];
    // Loss is there for every window.
    let loss = vec![
        (at(0), 0.0),
        (at(10), 25.0),
        (at(20), 100.0),
        (at(30), 0.0),
        (at(60), 50.0),
        (at(70), 0.0),
        (at(200), 100.0),
        (at(300), 0.0),
        (at(590), 75.0),
    ];
    for (names, key) in FAMILIES {
        for (name, want) in names.iter().zip([&avg, &max, &loss]) {
            // A raw point is a single value: average, max, min and sum are
            // the value itself, its variance is 0.
            for filter in ["average", "max", "min", "sum"] {
                let got = metric_data(&f.app, name, key, &f.conn, filter, 1, from, to).await;
                assert_eq!(&got, want, "{name} {filter}");
            }
            let got = metric_data(&f.app, name, key, &f.conn, "variance", 1, from, to).await;
            let zeros: Vec<(i64, f64)> = want.iter().map(|(t, _)| (*t, 0.0)).collect();
            assert_eq!(got, zeros, "{name} variance");
        }
    }
    // The other monitor's windows are its own.
    let other = metric_data(
        &f.app,
        "link_average_latency",
        "evpn_connection_id",
        &f.other_conn,
        "average",
        1,
        from,
        to,
    )
    .await;
    assert_eq!(other.len(), WINDOWS.len());
    assert!(other.iter().all(|(_, v)| *v == 900.0), "{other:?}");
}

/// Hand-computed aggregates: (bucket offset in s, [average, max, min, sum,
/// variance]) per metric kind (latency, max latency, loss) and period.
/// Variance is the population variance of the per-window values.
#[expect(
    clippy::approx_constant,
    reason = "3.14 is a variance computed by hand, not pi"
)]
fn expected(period: i64) -> [Vec<(i64, [f64; 5])>; 3] {
    match period {
        60 => [
            vec![
                // [2, 4, 6]: mean 4, variance (4 + 0 + 4) / 3
                (0, [4.0, 6.0, 2.0, 12.0, 2.667]),
                // [1.5, 2.5]
                (60, [2.0, 2.5, 1.5, 4.0, 0.25]),
                // bucket 180 holds only a lost window: no latency at all
                (300, [10.0, 10.0, 10.0, 10.0, 0.0]),
                (540, [20.0, 20.0, 20.0, 20.0, 0.0]),
            ],
            vec![
                // [3, 6, 7]: mean 16/3, variance 94/3 - 256/9 = 26/9
                (0, [5.333, 7.0, 3.0, 16.0, 2.889]),
                (60, [3.0, 3.5, 2.5, 6.0, 0.25]),
                (300, [12.0, 12.0, 12.0, 12.0, 0.0]),
                (540, [20.0, 20.0, 20.0, 20.0, 0.0]),
            ],
            vec![
                // [0, 25, 100, 0]: mean 31.25, variance 10625/4 - 31.25^2
                (0, [31.25, 100.0, 0.0, 125.0, 1679.688]),
                // [50, 0]
                (60, [25.0, 50.0, 0.0, 50.0, 625.0]),
                (180, [100.0, 100.0, 100.0, 100.0, 0.0]),
                (300, [0.0, 0.0, 0.0, 0.0, 0.0]),
                (540, [75.0, 75.0, 75.0, 75.0, 0.0]),
            ],
        ],
        300 => [
            vec![
                // [2, 4, 6, 1.5, 2.5]: mean 3.2, variance 64.5/5 - 10.24
                (0, [3.2, 6.0, 1.5, 16.0, 2.66]),
                // [10, 20]
                (300, [15.0, 20.0, 10.0, 30.0, 25.0]),
            ],
            vec![
                // [3, 6, 7, 2.5, 3.5]: mean 4.4, variance 112.5/5 - 19.36
                (0, [4.4, 7.0, 2.5, 22.0, 3.14]),
                // [12, 20]
                (300, [16.0, 20.0, 12.0, 32.0, 16.0]),
            ],
            vec![
                // [0, 25, 100, 0, 50, 0, 100]: mean 275/7,
                // variance 23125/7 - (275/7)^2 = 1760.2040...
                (0, [39.286, 100.0, 0.0, 275.0, 1760.204]),
                // [0, 75]
                (300, [37.5, 75.0, 0.0, 75.0, 1406.25]),
            ],
        ],
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn metric_data_rollups_are_exact_aggregates_for_every_filter() {
    let f = fixture().await;
    let (from, to) = (f.base, f.base + 600_000);
    for period in [60, 300] {
        let want = expected(period);
        for (names, key) in FAMILIES {
            for (name, buckets) in names.iter().zip(&want) {
                for (i, filter) in FILTERS.iter().enumerate() {
                    let got =
                        metric_data(&f.app, name, key, &f.conn, filter, period, from, to).await;
                    let exp: Vec<(i64, f64)> = buckets
                        .iter()
                        .map(|(s, v)| (f.base + s * 1000, v[i]))
                        .collect();
                    assert_eq!(got, exp, "{name} filter={filter} period={period}");
                }
            }
        }
    }
}

#[tokio::test]
async fn metric_data_aligns_from_down_to_the_period_and_to_is_exclusive() {
    let f = fixture().await;
    let get = |period: i64, from: i64, to: i64| {
        metric_data(
            &f.app,
            "link_packet_loss_rate",
            "evpn_connection_id",
            &f.conn,
            "average",
            period,
            from,
            to,
        )
    };
    let b = f.base;
    // period 60: from inside bucket 60 moves down to it; bucket 0 stays out.
    assert_eq!(
        get(60, b + 61_234, b + 600_000).await,
        vec![
            (b + 60_000, 25.0),
            (b + 180_000, 100.0),
            (b + 300_000, 0.0),
            (b + 540_000, 75.0)
        ]
    );
    // period 300: from one ms before the second bucket moves down to the first.
    assert_eq!(
        get(300, b + 299_999, b + 600_000).await,
        vec![(b, 39.286), (b + 300_000, 37.5)]
    );
    // period 1: from moves down to the whole second, which is a window start.
    assert_eq!(
        get(1, b + 10_500, b + 30_000).await,
        vec![(b + 10_000, 25.0), (b + 20_000, 100.0)]
    );
    // `to` is exclusive: the bucket starting at `to` is not returned.
    assert_eq!(get(60, b, b + 60_000).await, vec![(b, 31.25)]);
    assert_eq!(get(300, b, b + 300_000).await, vec![(b, 39.286)]);
}

#[tokio::test]
async fn metric_data_empty_windows_are_empty_lists() {
    let f = fixture().await;
    let b = f.base;
    for (names, key) in FAMILIES {
        for name in names {
            for period in [1, 60, 300, 3600] {
                // An hour before any datapoint.
                let got = metric_data(
                    &f.app,
                    name,
                    key,
                    &f.conn,
                    "average",
                    period,
                    b - HOUR_MS,
                    b,
                )
                .await;
                assert_eq!(got, vec![], "{name} period={period}");
            }
        }
        // Bucket [180, 240) holds only a window without replies: latency is
        // empty there, loss is not.
        for name in &names[..2] {
            let got = metric_data(
                &f.app,
                name,
                key,
                &f.conn,
                "max",
                60,
                b + 180_000,
                b + 240_000,
            )
            .await;
            assert_eq!(got, vec![], "{name}");
        }
        let got = metric_data(
            &f.app,
            names[2],
            key,
            &f.conn,
            "max",
            60,
            b + 180_000,
            b + 240_000,
        )
        .await;
        assert_eq!(got, vec![(b + 180_000, 100.0)]);
    }
    // Periods that were never rolled up have nothing yet.
    let got = metric_data(
        &f.app,
        "link_average_latency",
        "evpn_connection_id",
        &f.conn,
        "average",
        1200,
        b,
        b + 600_000,
    )
    .await;
    assert_eq!(got, vec![]);
}

#[tokio::test]
async fn metric_data_for_a_connection_without_monitor_is_empty() {
    let f = fixture().await;
    let bare = bare_connection(&f.app, "127.0.0.12").await;
    let (from, to) = (f.base, f.base + 600_000);
    for conn in [bare, uuid()] {
        for (names, key) in FAMILIES {
            for name in names {
                for period in [1, 60, 300] {
                    let got =
                        metric_data(&f.app, name, key, &conn, "average", period, from, to).await;
                    assert_eq!(got, vec![], "{name} period={period} conn={conn}");
                }
            }
        }
    }
    // A connection's id under the other family's dimension is not its metric.
    let r = metric_data_raw(
        &f.app,
        &query(
            "link_average_latency",
            "vpn_connection_id",
            &f.conn,
            "average",
            1,
            from,
            to,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["datapoints"], json!([]));
}

#[tokio::test]
async fn metric_data_bad_parameters_are_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let (_, _, conn, _) = app.seed().await;
    let to = aligned_ago(HOUR_MS);
    let from = to - HOUR_MS;
    let good = query(
        "link_average_latency",
        "evpn_connection_id",
        &conn,
        "average",
        60,
        from,
        to,
    );
    let ok = metric_data_raw(&app, &good).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
    let without = |k: &str| {
        good.split('&')
            .filter(|kv| !kv.starts_with(&format!("{k}=")))
            .collect::<Vec<_>>()
            .join("&")
    };
    let with = |k: &str, v: &str| format!("{}&{k}={v}", without(k));
    let cases: Vec<(String, &str)> = vec![
        (without("namespace"), "namespace"),
        (with("namespace", "SYSVPN"), "namespace"),
        (without("metric_name"), "metric_name"),
        (with("metric_name", "link_median_latency"), "metric_name"),
        (without("dim.0"), "dim.0"),
        (with("dim.0", &format!("evpn_connection_id{conn}")), "dim.0"),
        (with("dim.0", &format!("evpn_gateway_id,{conn}")), "dim.0"),
        (without("filter"), "filter"),
        (with("filter", "median"), "filter"),
        (without("period"), "period"),
        (with("period", "7"), "period"),
        (with("period", "sixty"), "period"),
        (without("from"), "from"),
        (with("from", &to.to_string()), "from"),
        (with("from", &(to + 1).to_string()), "from"),
        (with("from", "1000"), "from"),
        (with("from", "10000000000000"), "from"),
        (without("to"), "to"),
        (with("to", "soon"), "to"),
        (with("to", &format!("{to}.5")), "to"),
        (with("to", "10000000000000"), "to"),
    ];
    for (q, param) in cases {
        let r = metric_data_raw(&app, &q).await;
        let msg = r.assert_error(400, "ces.0014");
        assert!(
            msg.contains(param),
            "{q}: message {msg:?} does not name {param}"
        );
    }
}

#[tokio::test]
async fn batch_query_period_string_filter_and_shape() {
    let f = fixture().await;
    let conn = &f.conn;
    let metrics: Vec<Value> = FAMILIES
        .iter()
        .flat_map(|(names, key)| {
            names.iter().map(move |n| {
                json!({"namespace": "SYS.VPN", "metric_name": n,
                       "dimensions": [{"name": key, "value": conn}]})
            })
        })
        .collect();
    for (period, filter_idx) in [("60", 0usize), ("300", 4), ("300", 3)] {
        let filter = FILTERS[filter_idx];
        let r = batch(
            &f.app,
            json!({"metrics": metrics, "period": period, "filter": filter,
                   "from": f.base, "to": f.base + 600_000}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(keys(&r.body), ["metrics"]);
        let got = r.body["metrics"].as_array().unwrap();
        assert_eq!(got.len(), 6);
        let want = expected(period.parse().unwrap());
        for (i, m) in got.iter().enumerate() {
            let (names, key) = FAMILIES[i / 3];
            assert_eq!(
                keys(m),
                [
                    "datapoints",
                    "dimensions",
                    "metric_name",
                    "namespace",
                    "unit"
                ]
            );
            assert_eq!(m["namespace"], "SYS.VPN");
            assert_eq!(m["metric_name"], names[i % 3]);
            assert_eq!(m["unit"], unit_of(names[i % 3]));
            assert_eq!(m["dimensions"], json!([{"name": key, "value": f.conn}]));
            let pts: Vec<(i64, f64)> = m["datapoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    assert_eq!(keys(p), {
                        let mut k = vec![filter.to_string(), "timestamp".to_string()];
                        k.sort();
                        k
                    });
                    (
                        p["timestamp"].as_i64().unwrap(),
                        p[filter].as_f64().unwrap(),
                    )
                })
                .collect();
            let exp: Vec<(i64, f64)> = want[i % 3]
                .iter()
                .map(|(s, v)| (f.base + s * 1000, v[filter_idx]))
                .collect();
            assert_eq!(pts, exp, "{} period={period} filter={filter}", names[i % 3]);
        }
    }
    // Period 1 over the raw windows; a connection without monitor and an
    // unknown one get empty lists in their place.
    let r = batch(
        &f.app,
        json!({"metrics": [
            {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
             "dimensions": [{"name": "evpn_connection_id", "value": f.conn}]},
            {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
             "dimensions": [{"name": "evpn_connection_id", "value": uuid()}]}],
            "period": "1", "filter": "average", "from": f.base, "to": f.base + 600_000}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let loss: Vec<f64> = r.body["metrics"][0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["average"].as_f64().unwrap())
        .collect();
    assert_eq!(loss, [0.0, 25.0, 100.0, 0.0, 50.0, 0.0, 100.0, 0.0, 75.0]);
    assert_eq!(r.body["metrics"][1]["datapoints"], json!([]));
}

#[tokio::test]
async fn batch_query_window_is_clipped_per_period() {
    let app = TestApp::spawn().await;
    let (_, _, conn, mon) = app.seed().await;
    let to = aligned_ago(HOUR_MS);
    let times = [
        to - 25 * HOUR_MS,         // outside 24 h (period 300's limit)
        to - 23 * HOUR_MS,         // inside 24 h, outside 4 h
        to - 4 * HOUR_MS - 10_000, // just outside 4 h (period 1's limit)
        to - 4 * HOUR_MS,          // exactly 4 h before `to`: in
        to - 10_000,               // the last window before `to`
        to,                        // `to` itself is excluded
    ];
    let pts: Vec<WindowPoint> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            point(
                &app,
                &mon,
                *t,
                4,
                4,
                Some(1.0 + i as f64),
                Some(2.0 + i as f64),
            )
        })
        .collect();
    insert(&app, &pts).await;
    roll_up(&app, &[300]).await;
    let run = |period: &'static str| {
        let body = json!({"metrics": [{"namespace": "SYS.VPN", "metric_name": "link_average_latency",
            "dimensions": [{"name": "evpn_connection_id", "value": conn}]}],
            "period": period, "filter": "max", "from": to - 30 * HOUR_MS, "to": to});
        let app = &app;
        async move {
            let r = batch(app, body).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
            r.body["metrics"][0]["datapoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["timestamp"].as_i64().unwrap(), p["max"].as_f64().unwrap()))
                .collect::<Vec<_>>()
        }
    };
    // Period 1: `from` moves up to `to - 4 h`.
    assert_eq!(
        run("1").await,
        vec![(to - 4 * HOUR_MS, 4.0), (to - 10_000, 5.0)]
    );
    // Period 300: `from` moves up to `to - 24 h`; buckets are 300 s aligned.
    assert_eq!(
        run("300").await,
        vec![
            (to - 23 * HOUR_MS, 2.0),
            (to - 4 * HOUR_MS - 300_000, 3.0),
            (to - 4 * HOUR_MS, 4.0),
            (to - 300_000, 5.0),
        ]
    );
    // metric-data with period 1 over the same range, limited to 4 h by hand,
    // agrees with the batch query.
    let direct = metric_data(
        &app,
        "link_average_latency",
        "evpn_connection_id",
        &conn,
        "max",
        1,
        to - 4 * HOUR_MS,
        to,
    )
    .await;
    assert_eq!(direct, vec![(to - 4 * HOUR_MS, 4.0), (to - 10_000, 5.0)]);
}

#[tokio::test]
async fn batch_query_limits() {
    let app = TestApp::spawn().await;
    let (_, _, conn, mon) = app.seed().await;
    let to = aligned_ago(HOUR_MS);
    // 3001 one-second windows: the first 1500 with replies, the rest lost.
    let pts: Vec<WindowPoint> = (0..3001)
        .map(|i| {
            let t = to - 3_001_000 + i * 1000;
            if i < 1500 {
                point(&app, &mon, t, 4, 4, Some(1.0), Some(2.0))
            } else {
                point(&app, &mon, t, 4, 0, None, None)
            }
        })
        .collect();
    insert(&app, &pts).await;
    let m = |name: &str, key: &str| {
        json!({"namespace": "SYS.VPN", "metric_name": name,
               "dimensions": [{"name": key, "value": conn}]})
    };
    let body = |metrics: Vec<Value>| {
        json!({"metrics": metrics, "period": "1", "filter": "average",
               "from": to - 2 * HOUR_MS, "to": to})
    };
    // 1500 + 1500 = 3000 points: allowed.
    let r = batch(
        &app,
        body(vec![
            m("link_average_latency", "evpn_connection_id"),
            m("public_average_latency", "vpn_connection_id"),
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    for i in 0..2 {
        assert_eq!(
            r.body["metrics"][i]["datapoints"].as_array().unwrap().len(),
            1500
        );
    }
    // 3001 points in one metric: too many.
    let r = batch(
        &app,
        body(vec![m("link_packet_loss_rate", "evpn_connection_id")]),
    )
    .await;
    let msg = r.assert_error(400, "ces.0014");
    assert!(msg.contains("3000"), "{msg}");
    // ... also spread over several metrics.
    let r = batch(
        &app,
        body(vec![
            m("link_average_latency", "evpn_connection_id"),
            m("public_average_latency", "vpn_connection_id"),
            m("link_max_latency", "evpn_connection_id"),
        ]),
    )
    .await;
    let msg = r.assert_error(400, "ces.0014");
    assert!(msg.contains("3000"), "{msg}");
    // metric-data has the same limit.
    let r = metric_data_raw(
        &app,
        &query(
            "link_packet_loss_rate",
            "evpn_connection_id",
            &conn,
            "average",
            1,
            to - 2 * HOUR_MS,
            to,
        ),
    )
    .await;
    let msg = r.assert_error(400, "ces.0014");
    assert!(msg.contains("3000"), "{msg}");

    // 500 metrics are allowed, 501 are not, nor none.
    let many = |n: usize| {
        (0..n)
            .map(|_| {
                json!({"namespace": "SYS.VPN", "metric_name": "link_average_latency",
                       "dimensions": [{"name": "evpn_connection_id", "value": uuid()}]})
            })
            .collect::<Vec<_>>()
    };
    let r = batch(&app, body(many(500))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["metrics"].as_array().unwrap().len(), 500);
    for n in [501, 0] {
        let r = batch(&app, body(many(n))).await;
        let msg = r.assert_error(400, "ces.0014");
        assert!(msg.contains("metrics"), "{n}: {msg}");
    }

    // Bad values name the field.
    let one = vec![m("link_average_latency", "evpn_connection_id")];
    let with = |k: &str, v: Value| {
        let mut b = body(one.clone());
        b[k] = v;
        b
    };
    for (b, param) in [
        (with("period", json!("7")), "period"),
        (with("filter", json!("median")), "filter"),
        (with("from", json!(to)), "from"),
        (with("from", json!(1000)), "from"),
        (with("to", json!(10_000_000_000_000_i64)), "to"),
    ] {
        let r = batch(&app, b).await;
        let msg = r.assert_error(400, "ces.0014");
        assert!(msg.contains(param), "{param}: {msg}");
    }
    let r = batch(
        &app,
        body(vec![
            json!({"namespace": "SYS.VPN", "metric_name": "link_average_latency",
                         "dimensions": []}),
        ]),
    )
    .await;
    let msg = r.assert_error(400, "ces.0014");
    assert!(msg.contains("metrics[0].dimensions"), "{msg}");
    let r = batch(
        &app,
        body(vec![
            m("link_average_latency", "evpn_connection_id"),
            m("link_mean_latency", "evpn_connection_id"),
        ]),
    )
    .await;
    let msg = r.assert_error(400, "ces.0014");
    assert!(msg.contains("metrics[1].metric_name"), "{msg}");

    // Unknown fields are refused like everywhere else in the API.
    let r = batch(&app, with("extra", json!(1))).await;
    let msg = r.assert_error(400, "VPN.0013");
    assert!(msg.contains("extra"), "{msg}");
    let mut b = body(one.clone());
    b["metrics"][0]["unit"] = json!("ms");
    let msg = batch(&app, b).await.assert_error(400, "VPN.0013");
    assert!(msg.contains("unit"), "{msg}");
}

/// The (metric, dimension key, connection) triples vpnmon lists for `conns`,
/// in cursor order.
fn listed_for(conns: &[&str]) -> Vec<(String, String, String)> {
    let mut all: Vec<(String, String, String)> = conns
        .iter()
        .flat_map(|c| {
            FAMILIES.iter().flat_map(move |(names, key)| {
                names
                    .iter()
                    .map(move |n| (n.to_string(), key.to_string(), c.to_string()))
            })
        })
        .collect();
    all.sort_by_key(|(n, k, c)| format!("SYS.VPN.{n}.{k}:{c}"));
    all
}

/// GET metrics; checks each entry's shape and `meta_data`; returns the
/// triples and the marker.
async fn list_metrics(
    app: &TestApp,
    query: &str,
    total: usize,
) -> (Vec<(String, String, String)>, String) {
    let r = ces_get(
        app,
        &app.token,
        &app.project_id,
        &format!("/metrics?{query}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.raw);
    assert_eq!(keys(&r.body), ["meta_data", "metrics"]);
    let got: Vec<(String, String, String)> = r.body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(
                keys(m),
                ["dimensions", "metric_name", "namespace", "unit"],
                "{}",
                r.raw
            );
            assert_eq!(m["namespace"], "SYS.VPN");
            let name = m["metric_name"].as_str().unwrap().to_string();
            assert_eq!(m["unit"], unit_of(&name));
            let dims = m["dimensions"].as_array().unwrap();
            assert_eq!(dims.len(), 1, "{}", r.raw);
            (
                name,
                dims[0]["name"].as_str().unwrap().to_string(),
                dims[0]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let meta = &r.body["meta_data"];
    assert_eq!(keys(meta), ["count", "marker", "total"]);
    assert_eq!(meta["count"], got.len(), "{query}: {}", r.raw);
    assert_eq!(meta["total"], total, "{query}: {}", r.raw);
    let marker = meta["marker"].as_str().unwrap().to_string();
    match got.last() {
        Some((n, k, c)) => assert_eq!(marker, format!("SYS.VPN.{n}.{k}:{c}")),
        None => assert_eq!(marker, ""),
    }
    (got, marker)
}

#[tokio::test]
async fn list_metrics_six_per_monitored_connection_with_paging_order_and_filters() {
    let app = TestApp::spawn().await;
    assert_eq!(list_metrics(&app, "", 0).await.0, vec![]);
    let (_, _, c1, _) = app.seed().await;
    let c2 = bare_connection(&app, "127.0.0.11").await;
    app.monitor(&c2).await;
    // A connection without a monitor has no metrics.
    let _bare = bare_connection(&app, "127.0.0.12").await;

    let all = listed_for(&[&c1, &c2]);
    assert_eq!(all.len(), 12);
    let (got, _) = list_metrics(&app, "", 12).await;
    assert_eq!(got, all);
    assert_eq!(
        list_metrics(&app, "namespace=SYS.VPN&order=asc", 12)
            .await
            .0,
        all
    );
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(list_metrics(&app, "order=desc", 12).await.0, rev);

    // Cursor paging, both orders: pages of 5, 5, 2, then an empty page.
    for (order, want) in [("asc", &all), ("desc", &rev)] {
        let mut seen = Vec::new();
        let mut start: Option<String> = None;
        let mut sizes = Vec::new();
        loop {
            let q = match &start {
                None => format!("limit=5&order={order}"),
                Some(s) => format!("limit=5&order={order}&start={s}"),
            };
            let (page, marker) = list_metrics(&app, &q, 12).await;
            sizes.push(page.len());
            if page.is_empty() {
                break;
            }
            seen.extend(page);
            start = Some(marker);
        }
        assert_eq!(sizes, [5, 5, 2, 0], "{order}");
        assert_eq!(&seen, want, "{order}");
    }

    // Filters.
    let (got, _) = list_metrics(&app, "metric_name=link_max_latency", 2).await;
    assert_eq!(
        got,
        listed_for(&[&c1, &c2])
            .into_iter()
            .filter(|(n, _, _)| n == "link_max_latency")
            .collect::<Vec<_>>()
    );
    for (names, key) in FAMILIES {
        let (got, _) = list_metrics(&app, &format!("dim.0={key},{c1}"), 3).await;
        let mut want: Vec<_> = names
            .iter()
            .map(|n| (n.to_string(), key.to_string(), c1.clone()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{key}");
    }
    let (got, _) = list_metrics(
        &app,
        &format!("metric_name=public_packet_loss_rate&dim.0=vpn_connection_id,{c2}"),
        1,
    )
    .await;
    assert_eq!(
        got,
        [(
            "public_packet_loss_rate".to_string(),
            "vpn_connection_id".to_string(),
            c2.clone()
        )]
    );
    // Filters that match nothing.
    for q in [
        format!("dim.0=evpn_connection_id,{}", uuid()),
        format!("metric_name=link_average_latency&dim.0=vpn_connection_id,{c1}"),
        "metric_name=tunnel_average_latency".to_string(),
        "namespace=SYS.ECS".to_string(),
    ] {
        assert_eq!(list_metrics(&app, &q, 0).await.0, vec![], "{q}");
    }
    // Bad parameters name themselves.
    for (q, param) in [
        ("order=sideways", "order"),
        ("namespace=x", "namespace"),
        ("dim.0=evpn_connection_id", "dim.0"),
    ] {
        let r = ces_get(&app, &app.token, &app.project_id, &format!("/metrics?{q}")).await;
        let msg = r.assert_error(400, "ces.0014");
        assert!(msg.contains(param), "{q}: {msg}");
    }
}

#[tokio::test]
async fn list_metrics_bad_limit_is_400_ces_0014() {
    let app = TestApp::spawn().await;
    for limit in ["0", "1001", "ten"] {
        let r = ces_get(
            &app,
            &app.token,
            &app.project_id,
            &format!("/metrics?limit={limit}"),
        )
        .await;
        let msg = r.assert_error(400, "ces.0014");
        assert!(msg.contains("limit"), "{limit}: {msg}");
    }
}

#[tokio::test]
async fn ces_is_tenant_isolated() {
    let f = fixture().await;
    let app = &f.app;
    let (other_token, other_pid) = app.other_tenant("ces-other").await;
    let (from, to) = (f.base, f.base + 600_000);
    let q = query(
        "link_average_latency",
        "evpn_connection_id",
        &f.conn,
        "average",
        1,
        from,
        to,
    );
    let body = json!({"metrics": [{"namespace": "SYS.VPN", "metric_name": "link_average_latency",
        "dimensions": [{"name": "evpn_connection_id", "value": f.conn}]}],
        "period": "1", "filter": "average", "from": from, "to": to});

    // Another project's token on this project's path: 403.
    ces_get(
        app,
        &other_token,
        &app.project_id,
        &format!("/metric-data?{q}"),
    )
    .await
    .assert_error(403, "VPN.0003");
    ces_get(app, &other_token, &app.project_id, "/metrics")
        .await
        .assert_error(403, "VPN.0003");
    app.send(
        Method::POST,
        &ces(&app.project_id, "/batch-query-metric-data"),
        Some(&other_token),
        Some(body.clone()),
    )
    .await
    .assert_error(403, "VPN.0003");

    // This project's connection id under the other project's own path:
    // nothing, as if it did not exist.
    let r = ces_get(app, &other_token, &other_pid, &format!("/metric-data?{q}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["datapoints"], json!([]));
    let r = app
        .send(
            Method::POST,
            &ces(&other_pid, "/batch-query-metric-data"),
            Some(&other_token),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["metrics"][0]["datapoints"], json!([]));
    let r = ces_get(app, &other_token, &other_pid, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["metrics"], json!([]));
    assert_eq!(r.body["meta_data"]["total"], 0);

    // The owner still sees its datapoints.
    assert_eq!(
        metric_data(
            app,
            "link_average_latency",
            "evpn_connection_id",
            &f.conn,
            "average",
            1,
            from,
            to
        )
        .await
        .len(),
        7
    );
}

#[tokio::test]
async fn batch_query_body_errors_use_the_ces_code() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp_millis();
    let m = json!([{"namespace": "SYS.VPN", "metric_name": "link_average_latency",
                    "dimensions": [{"name": "evpn_connection_id", "value": uuid::Uuid::new_v4().to_string()}]}]);
    let msg = batch(
        &app,
        json!({"metrics": m, "period": 60, "filter": "average", "from": now - 60_000, "to": now}),
    )
    .await
    .assert_error(400, "ces.0014");
    assert!(msg.contains("period"), "{msg}");
    let msg = batch(
        &app,
        json!({"metrics": m, "period": "60", "filter": "average", "from": now - 60_000}),
    )
    .await
    .assert_error(400, "ces.0014");
    assert!(msg.contains("to is required"), "{msg}");
    app.stop().await;
}
