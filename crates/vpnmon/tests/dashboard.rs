//! The dashboard: its static pages, the overview endpoint, and the pages
//! themselves in a real Chromium (`tests/browser/dashboard.test.mjs`, driven
//! by playwright-core against Debian's `chromium`).
//!
//! The browser test writes monitor data through the store (two days of
//! 10 s windows with delay, jitter, loss bursts, a link-down period and a
//! stretch without data, plus a year of hourly windows, all rolled up),
//! creates alarm rules through the CES API and has the store evaluate them
//! over those windows, then runs the node script against the real server on 127.0.0.1:0. Without
//! chromium, node or `tests/browser/node_modules` it prints why and skips,
//! unless `VPNMON_REQUIRE_BROWSER=1` (what `.ci/run` sets) makes that a
//! failure. `VPNMON_SCREENSHOTS=DIR` saves the overview and detail pages;
//! `VPNMON_DASHBOARD_HOLD_SECS=N` serves the data for N s first (to look
//! at the pages by hand).

#[path = "api/helpers.rs"]
#[expect(dead_code, reason = "the API tests' helpers; this binary uses some")]
mod helpers;

use helpers::{ADMIN_PASSWORD, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use store::prelude::*;
use store::{LinkState, WindowPoint};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

async fn get_raw(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = app.client.get(format!("{}{path}", app.base));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.expect("request")
}

#[tokio::test]
async fn pages_and_assets_are_served_without_credentials() {
    let app = TestApp::spawn().await;
    let r = get_raw(&app, "/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = r.text().await.unwrap();
    for needle in [
        r#"name="user""#,
        r#"name="password""#,
        r#"name="project""#,
        r#"role="alert""#,
    ] {
        assert!(html.contains(needle), "login page lacks {needle}");
    }
    for path in ["/dashboard", "/dashboard/"] {
        let r = get_raw(&app, path, &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.text().await.unwrap().contains(r#"<table id="monitors""#));
    }
    let r = get_raw(
        &app,
        &format!("/dashboard/monitors/{}", helpers::uuid()),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    for stat in ["avg", "min", "max", "now", "loss"] {
        assert!(html.contains(&format!(r#"data-stat="{stat}""#)), "{stat}");
    }
    for range in ["3h", "30h", "10d", "360d"] {
        assert!(
            html.contains(&format!(r#"data-range="{range}""#)),
            "{range}"
        );
    }
    assert!(html.contains(r#"<table id="alarm-rules""#));

    for (path, mime) in [
        (
            "/dashboard/assets/vendor/uplot/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/dashboard/assets/vendor/uplot/uPlot.min.css",
            "text/css; charset=utf-8",
        ),
        (
            "/dashboard/assets/logic.mjs",
            "text/javascript; charset=utf-8",
        ),
        ("/dashboard/assets/app.css", "text/css; charset=utf-8"),
    ] {
        let r = get_raw(&app, path, &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], mime, "{path}");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let again = get_raw(&app, path, &[("If-None-Match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let licence = get_raw(&app, "/dashboard/assets/vendor/uplot/LICENSE", &[]).await;
    assert!(licence.text().await.unwrap().contains("Leon Sorokin"));
    for path in [
        "/dashboard/assets/nope.js",
        "/dashboard/assets/../index.html",
        "/dashboard/assets/vendor//uplot/LICENSE",
    ] {
        let r = get_raw(&app, path, &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    app.stop().await;
}

/// A connection named `name` to a new customer gateway at `cgw` on gateway
/// (`vgw`, `eip`) of the project that `token` holds, with a monitor;
/// returns (connection id, monitor id).
async fn monitored_connection(
    app: &TestApp,
    token: &str,
    project: &str,
    (vgw, eip): (&str, &str),
    name: &str,
    cgw: &str,
) -> (String, String) {
    let post = |path: String, body: Value| async move {
        let r = app.send(Method::POST, &path, Some(token), Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.raw);
        r.body
    };
    let c = post(
        format!("/v5/{project}/customer-gateways"),
        json!({"customer_gateway": {"id_value": cgw, "name": format!("cgw-{name}")}}),
    )
    .await;
    let cgw_id = c["customer_gateway"]["id"].as_str().unwrap().to_string();
    let k = post(
        format!("/v5/{project}/vpn-connection"),
        json!({"vpn_connection": {"name": name, "vgw_id": vgw, "vgw_ip": eip, "cgw_id": cgw_id,
            "peer_subnets": ["10.10.0.0/16"], "psk": "Abcd1234!x"}}),
    )
    .await;
    let conn = k["vpn_connection"]["id"].as_str().unwrap().to_string();
    let m = post(
        format!("/v5/{project}/connection-monitors"),
        json!({"connection_monitor": {"vpn_connection_id": conn}}),
    )
    .await;
    (
        conn,
        m["connection_monitor"]["id"].as_str().unwrap().to_string(),
    )
}

/// A gateway in the project `token` holds: (id, eip id).
async fn gateway_as(app: &TestApp, token: &str, project: &str) -> (String, String) {
    let r = app
        .send(
            Method::POST,
            &format!("/v5/{project}/vpn-gateways"),
            Some(token),
            Some(json!({"vpn_gateway": {"vpc_id": helpers::uuid(), "connect_subnet": helpers::uuid(),
                "local_subnets": ["192.168.0.0/24"], "eip1": {"type": "5_bgp", "bandwidth_size": 10}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let id = r.body["vpn_gateway"]["id"].as_str().unwrap().to_string();
    let s = app
        .send(
            Method::GET,
            &format!("/v5/{project}/vpn-gateways/{id}"),
            Some(token),
            None,
        )
        .await;
    let eip = s.body["vpn_gateway"]["eip1"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (id, eip)
}

/// A monitor id as the API shows it, typed for the store.
fn mid(m: &str) -> domain::MonitorId {
    domain::MonitorId::parse(m).expect("a monitor id")
}

fn window(
    m: &dyn std::fmt::Display,
    p: &str,
    t: i64,
    sent: i64,
    received: i64,
    rtt: Option<(f64, f64, f64)>,
) -> WindowPoint {
    WindowPoint {
        monitor_id: mid(&m.to_string()),
        project_id: domain::ProjectId::parse(p).expect("a project id"),
        window_start_ms: t,
        sent,
        received,
        loss_pct: 100.0 * (sent - received) as f64 / sent as f64,
        rtt_min_ms: rtt.map(|r| r.0),
        rtt_avg_ms: rtt.map(|r| r.1),
        rtt_max_ms: rtt.map(|r| r.2),
        jitter_ms: rtt.map(|r| (r.2 - r.0) / 2.0),
    }
}

#[tokio::test]
async fn overview_sorts_filters_and_pages_on_the_server() {
    let app = TestApp::spawn().await;
    let (p, token) = (app.project_id.clone(), app.token.clone());
    let gw = gateway_as(&app, &token, &p).await;
    let gw = (gw.0.as_str(), gw.1.as_str());
    let mut ids = Vec::new();
    for (i, name) in ["alpha", "bravo", "charlie"].iter().enumerate() {
        let addr = format!("127.0.0.{}", 20 + i);
        ids.push(monitored_connection(&app, &token, &p, gw, name, &addr).await);
    }
    let now = app.clock_now().timestamp_millis();
    let t = now - now.rem_euclid(10_000) - 20_000;
    // alpha: clean and fast; bravo: 2 of 3 lost; charlie: no recent window.
    let pts = vec![
        window(&ids[0].1, &p, t, 3, 3, Some((0.5, 1.0, 1.5))),
        window(&ids[1].1, &p, t - 10_000, 3, 3, Some((4.0, 5.0, 9.0))),
        window(&ids[1].1, &p, t, 3, 1, Some((2.0, 2.0, 2.0))),
        window(&ids[2].1, &p, t - 10 * MIN, 3, 3, Some((1.0, 1.0, 1.0))),
    ];
    app.store.insert_points(&pts).await.unwrap();
    app.store
        .set_link_state(
            &mid(&ids[1].1),
            &LinkState {
                up: Some(false),
                changed_us: Some(1_700_000_000_000_000),
                note: None,
            },
        )
        .await
        .unwrap();
    let overview = |q: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::GET,
                &format!("/vpnmon/{}/overview{q}", app.project_id),
                Some(&app.token),
                None,
            )
            .await
        }
    };
    let order = |r: &helpers::Resp| -> Vec<String> {
        r.body["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = overview("").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.raw);
    assert_eq!(all.body["total_count"], 3);
    assert_eq!(
        order(&all),
        vec![ids[0].1.clone(), ids[1].1.clone(), ids[2].1.clone()],
        "by connection name"
    );
    let bravo = &all.body["monitors"][1];
    assert_eq!(bravo["connection_name"], "bravo");
    assert_eq!(bravo["vpn_connection_id"], ids[1].0.as_str());
    assert_eq!(bravo["source_ip"], "127.0.0.2");
    assert_eq!(bravo["destination_ip"], "127.0.0.21");
    assert_eq!(bravo["link"]["up"], false);
    assert_eq!(bravo["link"]["changed_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(bravo["last_window"]["window_start"], t);
    assert_eq!(bravo["last_window"]["rtt_avg_ms"], 2.0);
    assert_eq!(bravo["last_window"]["received"], 1);
    assert_eq!(
        all.body["monitors"][2]["last_window"],
        Value::Null,
        "a window older than 3 minutes is not the last window"
    );

    let by_loss = overview("?sort=loss&order=desc").await;
    assert_eq!(
        order(&by_loss),
        vec![ids[1].1.clone(), ids[0].1.clone(), ids[2].1.clone()]
    );
    let by_rtt = overview("?sort=rtt_max&order=asc").await;
    assert_eq!(
        order(&by_rtt),
        vec![ids[0].1.clone(), ids[1].1.clone(), ids[2].1.clone()],
        "no value sorts last"
    );
    let page = overview("?sort=connection&order=desc&limit=1&offset=1").await;
    assert_eq!(order(&page), vec![ids[1].1.clone()]);
    assert_eq!(page.body["total_count"], 3);
    let search = overview("?q=CHAR").await;
    assert_eq!(order(&search), vec![ids[2].1.clone()]);
    assert_eq!(search.body["total_count"], 1);
    let by_addr = overview("?q=127.0.0.20").await;
    assert_eq!(order(&by_addr), vec![ids[0].1.clone()]);

    for bad in [
        "?sort=nope",
        "?order=up",
        "?limit=0",
        "?limit=201",
        "?offset=-1",
    ] {
        overview(bad).await.assert_error(400, "VPN.0001");
    }

    let (other_token, other_p) = app.other_tenant("tenant-b").await;
    let r = app
        .send(
            Method::GET,
            &format!("/vpnmon/{other_p}/overview"),
            Some(&other_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["monitors"],
        json!([]),
        "another project sees none of them"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_pages_10_000_monitors_on_the_server() {
    let app = TestApp::spawn().await;
    let (p, token) = (app.project_id.clone(), app.token.clone());
    let (vgw, eip) = gateway_as(&app, &token, &p).await;
    let addrs: Vec<String> = (0..10_000)
        .map(|i| format!("127.1.{}.{}", i / 250, 1 + i % 250))
        .collect();
    let pid = domain::ProjectId::parse(&p).expect("a project id");
    let ids = app
        .store
        .bulk_monitored_links(
            &pid,
            &domain::GatewayId::parse(&vgw).expect("a gateway id"),
            &eip,
            &addrs,
            "Bulk-psk-1234",
        )
        .await
        .unwrap();
    let now = app.clock_now().timestamp_millis();
    let t = now - now.rem_euclid(10_000) - 10_000;
    // Loss i % 101 (so 100 % for every 101st), RTT growing with i.
    let pts: Vec<WindowPoint> = ids
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut w = window(m, &p, t, 100, 100 - (i % 101) as i64, None);
            let rtt = 1.0 + i as f64 / 1000.0;
            if w.received > 0 {
                (w.rtt_min_ms, w.rtt_avg_ms, w.rtt_max_ms) = (Some(rtt), Some(rtt), Some(rtt));
            }
            w
        })
        .collect();
    app.store.insert_points(&pts).await.unwrap();
    let started = std::time::Instant::now();
    let r = app
        .send(
            Method::GET,
            &format!("/vpnmon/{p}/overview?sort=loss&order=desc&limit=50&offset=50"),
            Some(&token),
            None,
        )
        .await;
    let took = started.elapsed();
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["total_count"], 10_000);
    let rows = r.body["monitors"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    // 99 monitors at 100 % loss, then 99 at 99 %...: rows 50..100 are
    // the rest of the 100 % ones and the first of the 99 % ones.
    assert_eq!(rows[0]["last_window"]["loss_pct"], 100.0);
    assert_eq!(rows[49]["last_window"]["loss_pct"], 99.0);
    let search = app
        .send(
            Method::GET,
            &format!("/vpnmon/{p}/overview?q=127.1.39.250"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(search.body["total_count"], 1);
    assert_eq!(
        search.body["monitors"][0]["id"],
        ids[9_999].to_string().as_str()
    );
    println!("a page of the overview of 10 000 monitors took {took:?}");
    assert!(
        took < std::time::Duration::from_secs(3),
        "{took:?} (an unoptimised build on a shared machine)"
    );
    app.stop().await;
}

/// A small deterministic generator (xorshift64*), so the data and the
/// screenshots are the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a simulated link does in the window starting at `t` (ms before the
/// newest window `age`): (pings lost probability, base RTT ms, jitter ms).
type Profile = fn(age: i64, t: i64) -> (f64, f64, f64);

fn windows(
    m: &str,
    p: &str,
    (from, to, step): (i64, i64, i64),
    pings: i64,
    profile: Profile,
    rng: &mut Rng,
) -> Vec<WindowPoint> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let (loss, base, jitter) = profile(to - t, t);
        if loss.is_nan() {
            t += step;
            continue; // no window: vpnmon was not probing
        }
        let diurnal = 1.0 + 0.12 * ((t % DAY) as f64 / DAY as f64 * std::f64::consts::TAU).sin();
        let mut rtts = Vec::new();
        for _ in 0..pings {
            if rng.next() >= loss {
                rtts.push(base * diurnal + jitter * (rng.next() + rng.next() + rng.next()));
            }
        }
        let rtt = (!rtts.is_empty()).then(|| {
            let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
            let max = rtts.iter().copied().fold(0.0, f64::max);
            (min, rtts.iter().sum::<f64>() / rtts.len() as f64, max)
        });
        out.push(window(&m, p, t, pings, rtts.len() as i64, rtt));
        t += step;
    }
    out
}

fn clean(_: i64, _: i64) -> (f64, f64, f64) {
    (0.0, 1.8, 0.3)
}

/// Down for the last 5 minutes, loss bursts every few hours before.
fn flaky(age: i64, t: i64) -> (f64, f64, f64) {
    if age < 5 * MIN {
        return (1.0, 0.0, 0.0);
    }
    let burst = (t / (10 * MIN)) % 17 == 3;
    (if burst { 0.35 } else { 0.01 }, 21.0, 4.0)
}

/// Lossy and slow; no data 90-70 minutes ago (vpnmon down), the link down
/// 40-30 minutes ago.
fn lossy(age: i64, _: i64) -> (f64, f64, f64) {
    if (70 * MIN..90 * MIN).contains(&age) {
        return (f64::NAN, 0.0, 0.0);
    }
    if (30 * MIN..40 * MIN).contains(&age) {
        return (1.0, 0.0, 0.0);
    }
    let loss = if age < 20 * MIN { 0.05 } else { 0.12 };
    (loss, 78.0, 14.0)
}

fn tool_missing() -> Option<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let chromium = std::env::var("VPNMON_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (apt-get install chromium, or set VPNMON_CHROMIUM)"
        ));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("node is not installed".into());
    }
    if !root
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        return Some("tests/browser/node_modules is missing (cd tests/browser && npm ci)".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    if let Some(why) = tool_missing() {
        if std::env::var("VPNMON_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("VPNMON_REQUIRE_BROWSER=1 but {why}");
        }
        eprintln!("skipping the browser test: {why}");
        return;
    }
    let app = TestApp::spawn().await;
    let (p, token) = (app.project_id.clone(), app.token.clone());
    let gw = gateway_as(&app, &token, &p).await;
    let gw = (gw.0.as_str(), gw.1.as_str());
    let frankfurt = monitored_connection(&app, &token, &p, gw, "dc-frankfurt", "127.0.0.20").await;
    let berlin = monitored_connection(&app, &token, &p, gw, "office-berlin", "127.0.0.21").await;
    let lagos = monitored_connection(&app, &token, &p, gw, "branch-lagos", "127.0.0.22").await;
    // Never probed: no data, a reason instead of a link state.
    let oslo = monitored_connection(&app, &token, &p, gw, "branch-oslo", "127.0.0.23").await;

    let (other_token, other_p) = app.other_tenant("tenant-b").await;
    let ogw = gateway_as(&app, &other_token, &other_p).await;
    let theirs = monitored_connection(
        &app,
        &other_token,
        &other_p,
        (&ogw.0, &ogw.1),
        "tenant-b-link",
        "127.0.0.30",
    )
    .await;

    // Two days of 10 s windows ending just before now (the server's clock),
    // a year of hourly windows before that for dc-frankfurt.
    let now = app.clock_now().timestamp_millis();
    let end = now - now.rem_euclid(10_000) - 10_000;
    let two_days = (end - 2 * DAY, end + 1, 10_000);
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut pts = windows(
        &frankfurt.1,
        &p,
        (end - 365 * DAY, end - 2 * DAY, HOUR),
        3,
        clean,
        &mut rng,
    );
    pts.extend(windows(&frankfurt.1, &p, two_days, 3, clean, &mut rng));
    pts.extend(windows(&berlin.1, &p, two_days, 3, flaky, &mut rng));
    pts.extend(windows(&lagos.1, &p, two_days, 10, lossy, &mut rng));
    pts.extend(windows(&theirs.1, &other_p, two_days, 3, clean, &mut rng));
    for chunk in pts.chunks(5000) {
        app.store.insert_points(chunk).await.unwrap();
    }
    MeasurementStore::roll_up(app.store.as_ref(), 86_400, end + 10_000)
        .await
        .unwrap();
    let link = |up: bool, ago: i64| LinkState {
        up: Some(up),
        changed_us: Some((now - ago) * 1000),
        note: None,
    };
    for (m, state) in [
        (&frankfurt.1, link(true, 2 * DAY)),
        (&berlin.1, link(false, 5 * MIN)),
        (&lagos.1, link(true, 30 * MIN)),
        (&theirs.1, link(true, DAY)),
    ] {
        app.store
            .set_monitor_status(&mid(m), "ACTIVE")
            .await
            .unwrap();
        app.store.set_link_state(&mid(m), &state).await.unwrap();
    }
    let not_probed = LinkState {
        up: None,
        changed_us: None,
        note: Some("destination 127.0.0.23 is outside the probe allowlist (--probe-allow)".into()),
    };
    app.store
        .set_link_state(&mid(&oslo.1), &not_probed)
        .await
        .unwrap();
    // Alarm rules, evaluated over the windows just written as the prober's
    // persist step does: branch-lagos loss >= 50 % for 3 windows (its
    // link-down 40-30 minutes ago is one alarm period) and RTT average
    // > 150 ms (never); office-berlin loss >= 50 % for 2 windows (down for
    // the last 5 minutes: in alarm now). The topic is for the rules page.
    let topic = app
        .send(
            Method::POST,
            &format!("/v2/{p}/notifications/topics"),
            Some(&token),
            Some(json!({"name": "noc", "display_name": "Network operations"})),
        )
        .await;
    assert_eq!(topic.status, StatusCode::CREATED, "{}", topic.raw);
    let urn = topic.body["topic_urn"].as_str().unwrap().to_string();
    let rule = |name: &str, conn: &str, metric: &str, op: &str, value: f64, count: i64| {
        let (app, token, p, urn) = (&app, &token, &p, &urn);
        let body = json!({"alarm_name": name,
            "metric": {"namespace": "SYS.VPN", "metric_name": metric,
                       "dimensions": [{"name": "evpn_connection_id", "value": conn}]},
            "condition": {"comparison_operator": op, "count": count, "filter": "average", "period": 1,
                          "value": value, "unit": if metric.ends_with("rate") { "%" } else { "ms" }},
            "alarm_level": 2,
            "alarm_actions": [{"type": "notification", "notificationList": [urn]}],
            "ok_actions": [{"type": "notification", "notificationList": [urn]}]});
        async move {
            let r = app
                .send(
                    Method::POST,
                    &format!("/V1.0/{p}/alarms"),
                    Some(token),
                    Some(body),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
            r.body["alarm_id"].as_str().unwrap().to_string()
        }
    };
    let lagos_loss = rule(
        "lagos-loss",
        &lagos.0,
        "link_packet_loss_rate",
        ">=",
        50.0,
        3,
    )
    .await;
    let lagos_rtt = rule("lagos-rtt", &lagos.0, "link_average_latency", ">", 150.0, 1).await;
    let berlin_loss = rule(
        "berlin-loss",
        &berlin.0,
        "link_packet_loss_rate",
        ">=",
        50.0,
        2,
    )
    .await;
    for chunk in pts.chunks(5000) {
        app.store.evaluate_windows(chunk).await.unwrap();
    }
    let gap_to = end - 70 * MIN;
    let fixture = json!({
        "base": app.base,
        "user": "admin",
        "password": ADMIN_PASSWORD,
        "project": "local-1",
        "monitors": [
            {"id": frankfurt.1, "connection": frankfurt.0, "name": "dc-frankfurt", "link": "up",
             "status": "ACTIVE", "alarm": "none"},
            {"id": berlin.1, "connection": berlin.0, "name": "office-berlin", "link": "down",
             "status": "ACTIVE", "alarm": "alarm"},
            {"id": lagos.1, "connection": lagos.0, "name": "branch-lagos", "link": "up",
             "status": "ACTIVE", "alarm": "ok"},
            {"id": oslo.1, "connection": oslo.0, "name": "branch-oslo", "link": "unknown",
             "status": "PENDING_CREATE", "alarm": "none"},
        ],
        "rules": {"lagos_loss": lagos_loss, "lagos_rtt": lagos_rtt, "berlin_loss": berlin_loss},
        // lagos' link was down for [end - 40 min, end - 30 min).
        "lagos_down": {"from": end - 40 * MIN, "to": end - 30 * MIN},
        "topic": urn,
        "top_loss": berlin.1,
        "lossy": lagos.1,
        // The windows of [end - 90 min, end - 70 min) are missing.
        "gap": {"from": gap_to - 20 * MIN, "to": gap_to},
        "year": frankfurt.1,
        "other": {"user": "user-tenant-b", "password": "Other-pass-123", "project": "tenant-b",
                  "monitor": theirs.1},
        "screenshots": std::env::var("VPNMON_SCREENSHOTS").ok(),
    });
    let dir = tempfile::tempdir().unwrap();
    let fixture_path = dir.path().join("fixture.json");
    std::fs::write(&fixture_path, fixture.to_string()).unwrap();
    if let Ok(secs) = std::env::var("VPNMON_DASHBOARD_HOLD_SECS") {
        // For working on the pages: serve the data for a while instead.
        eprintln!(
            "serving {} for {secs} s; fixture in {}",
            app.base,
            fixture_path.display()
        );
        let secs = secs.parse().unwrap_or(600);
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tokio::process::Command::new("node")
        .arg("dashboard.test.mjs")
        .current_dir(root.join("tests/browser"))
        .env("VPNMON_DASHBOARD_FIXTURE", &fixture_path)
        .env("HOME", dir.path())
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the browser test failed: {stdout}\n{stderr}"
    );
    app.stop().await;
}
