//! Two nodes on one PostgreSQL, in this process and network namespace:
//! both can send from loopback, so rendezvous hashing spreads the monitors
//! over them, each monitor in exactly one engine; when one node stops, the
//! other takes all of them within seconds. Skips (saying why) without
//! `VPNMON_TEST_DATABASE_URL`.

use crate::helpers::TestApp;
use crate::pg_support::{PG_ENV, drop_db, fresh_db};
use std::time::{Duration, Instant};
use store::prelude::*;

async fn node(url: &str, name: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (url, name) = (url.to_string(), name.to_string());
    TestApp::spawn_with(
        dir,
        move |s| {
            s.database_url = Some(url);
            s.node_name = Some(name);
            s.probe_interval = Duration::from_millis(900);
            s.probe_timeout = Duration::from_millis(200);
        },
        true,
    )
    .await
    .0
}

fn engine_monitors(app: &TestApp) -> u64 {
    app.engine
        .as_ref()
        .expect("the engine runs")
        .counters()
        .monitors
}

/// Waits (bounded) until `f` holds; returns how long it took.
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_split_the_monitors_and_one_takes_all_when_the_other_stops() {
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        eprintln!("skipping: {PG_ENV} not set (see .ci/pg-setup.sh)");
        return;
    };
    let (db, url) = fresh_db(&admin_url).await;
    let a = node(&url, "node-a").await;
    // 40 monitors from the gateway's EIP (127.0.0.2, on loopback) to
    // 127.0.1.x, created in bulk (no watcher call: the reconcile of each
    // node decides).
    let (vgw, eip, _) = a.gateway().await;
    let p = domain::ProjectId::parse(&a.project_id).unwrap();
    let vgw = domain::GatewayId::parse(&vgw).unwrap();
    let addrs: Vec<String> = (1..=40).map(|i| format!("127.0.1.{i}")).collect();
    let ids = a
        .store
        .bulk_monitored_links(&p, &vgw, &eip, &addrs, "Abcd1234!x")
        .await
        .unwrap();
    assert_eq!(ids.len(), 40);
    let b = node(&url, "node-b").await;
    // A sees B at its next renewal (<= 2 s) and drops what B wins; B took
    // its share at start.
    until(
        "both nodes probe, 40 in all",
        Duration::from_secs(10),
        || {
            let (na, nb) = (engine_monitors(&a), engine_monitors(&b));
            na > 0 && nb > 0 && na + nb == 40
        },
    )
    .await;
    // Every monitor is in exactly one engine: the two views agree.
    let live = a.store.live_nodes().await.unwrap();
    assert_eq!(live.len(), 2, "{live:?}");
    // The state endpoint names one node for each monitor; the counts match.
    let mut by_node = std::collections::HashMap::<String, u64>::new();
    for id in &ids {
        let st = a
            .send(
                reqwest::Method::GET,
                &format!("/vpnmon/{}/monitors/{id}/state", a.project_id),
                Some(&a.token),
                None,
            )
            .await;
        let n = st.body["monitor_state"]["node"]
            .as_str()
            .unwrap_or("none")
            .to_string();
        *by_node.entry(n).or_default() += 1;
    }
    assert_eq!(
        by_node.get("node-a").copied(),
        Some(engine_monitors(&a)),
        "{by_node:?}"
    );
    assert_eq!(
        by_node.get("node-b").copied(),
        Some(engine_monitors(&b)),
        "{by_node:?}"
    );

    // A clean stop: B leaves at once, A takes everything within a renewal.
    b.stop().await;
    let took = until("node-a probes all 40", Duration::from_secs(6), || {
        engine_monitors(&a) == 40
    })
    .await;
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(a.store.live_nodes().await.unwrap().len(), 1);
    a.stop().await;
    drop_db(&admin_url, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_monitor_creates_through_two_nodes_give_one_201_and_one_vpn_0381() {
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        eprintln!("skipping: {PG_ENV} not set (see .ci/pg-setup.sh)");
        return;
    };
    let (db, url) = fresh_db(&admin_url).await;
    let api_node = |name: &'static str| {
        let url = url.clone();
        async move {
            TestApp::spawn_with(
                tempfile::tempdir().unwrap(),
                move |s| {
                    s.database_url = Some(url);
                    s.node_name = Some(name.into());
                },
                false,
            )
            .await
            .0
        }
    };
    let a = api_node("node-a").await;
    let b = api_node("node-b").await;
    let (g, e, _) = a.gateway().await;
    for i in 0..5 {
        let c = a.cgw(&format!("127.0.2.{}", i + 1)).await;
        let conn = a.connection(&g, &e, &c).await;
        let body = serde_json::json!({"connection_monitor": {"vpn_connection_id": conn}});
        let (ra, rb) = tokio::join!(
            a.post("/connection-monitors", body.clone()),
            b.post("/connection-monitors", body.clone()),
        );
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 400], "{} / {}", ra.raw, rb.raw);
        let lost = if ra.status == 400 { ra } else { rb };
        lost.assert_error(400, "VPN.0381");
        let listed = b
            .get(&format!("/connection-monitors?vpn_connection_id={conn}"))
            .await;
        assert_eq!(
            listed.body["connection_monitors"].as_array().map(Vec::len),
            Some(1),
            "{}",
            listed.raw
        );
    }
    a.stop().await;
    b.stop().await;
    drop_db(&admin_url, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_engine_dies_is_unready_and_leaves_and_the_other_takes_over() {
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        eprintln!("skipping: {PG_ENV} not set (see .ci/pg-setup.sh)");
        return;
    };
    let (db, url) = fresh_db(&admin_url).await;
    let a = node(&url, "node-a").await;
    let (vgw, eip, _) = a.gateway().await;
    let p = domain::ProjectId::parse(&a.project_id).unwrap();
    let vgw = domain::GatewayId::parse(&vgw).unwrap();
    let addrs: Vec<String> = (1..=30).map(|i| format!("127.0.3.{i}")).collect();
    a.store
        .bulk_monitored_links(&p, &vgw, &eip, &addrs, "Abcd1234!x")
        .await
        .unwrap();
    let b = node(&url, "node-b").await;
    until(
        "both nodes probe, 30 in all",
        Duration::from_secs(10),
        || {
            let (na, nb) = (engine_monitors(&a), engine_monitors(&b));
            na > 0 && nb > 0 && na + nb == 30
        },
    )
    .await;
    // B's engine thread ends, as if it had died.
    b.engine.clone().unwrap().shutdown().await;
    let r = b.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.raw);
    assert_eq!(r.body["reason"], "the probe engine is not running");
    // B leaves (within its 1 s health check), A sees it at its next renewal.
    let took = until("node-a probes all 30", Duration::from_secs(8), || {
        engine_monitors(&a) == 30
    })
    .await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let live: Vec<String> = a
        .store
        .live_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(live, ["node-a"]);
    let r = b.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503, "still unready after leaving: {}", r.raw);
    a.stop().await;
    b.stop().await;
    drop_db(&admin_url, &db).await;
}

/// A node with its metrics listener; returns the app and its metrics URL.
async fn node_with_metrics(url: &str, name: &str) -> (TestApp, String) {
    let dir = tempfile::tempdir().unwrap();
    let (url, name) = (url.to_string(), name.to_string());
    let (app, metrics) = TestApp::spawn_with(
        dir,
        move |s| {
            s.database_url = Some(url);
            s.node_name = Some(name);
            s.probe_interval = Duration::from_millis(900);
            s.probe_timeout = Duration::from_millis(200);
            s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        },
        true,
    )
    .await;
    (
        app,
        format!("http://{}/metrics", metrics.expect("metrics served")),
    )
}

/// This node's `vpnmon_node_runs_jobs`.
async fn runs_jobs(app: &TestApp, metrics: &str) -> bool {
    let text = app.scrape(metrics).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("vpnmon_node_runs_jobs "))
        .unwrap_or_else(|| panic!("no vpnmon_node_runs_jobs in {text}"));
    line.ends_with(" 1")
}

/// `runs_jobs` of every node in `GET /vpnmon/nodes`, by name.
async fn listed_leaders(app: &TestApp) -> Vec<String> {
    let r = app
        .send(
            reqwest::Method::GET,
            "/vpnmon/nodes",
            Some(&app.token),
            None,
        )
        .await;
    r.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["runs_jobs"] == serde_json::Value::Bool(true))
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_runs_the_rollups_and_retention_and_the_next_takes_over_when_it_leaves() {
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        eprintln!("skipping: {PG_ENV} not set (see .ci/pg-setup.sh)");
        return;
    };
    let (db, url) = fresh_db(&admin_url).await;
    let before_a = Instant::now();
    let (a, ma) = node_with_metrics(&url, "node-a").await;
    let (b, mb) = node_with_metrics(&url, "node-b").await;
    // A started first: it leads once its lease has settled (ttl + renewal,
    // 10 s); B never does while A is live.
    let start = Instant::now();
    loop {
        let (la, lb) = (runs_jobs(&a, &ma).await, runs_jobs(&b, &mb).await);
        assert!(!lb, "node-b runs the jobs while node-a is live");
        if la {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "node-a does not lead within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        before_a.elapsed() >= Duration::from_secs(10),
        "led before its lease settled: {:?} after it was started",
        before_a.elapsed()
    );
    assert_eq!(listed_leaders(&b).await, ["node-a"]);
    // Both stay as they are for a few renewals.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(runs_jobs(&a, &ma).await && !runs_jobs(&b, &mb).await);
    }
    // A leaves (clean stop): B, whose lease has long settled, leads at its
    // next membership read.
    a.stop().await;
    let left = Instant::now();
    while !runs_jobs(&b, &mb).await {
        assert!(
            left.elapsed() < Duration::from_secs(6),
            "node-b does not take over within 6 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed_leaders(&b).await, ["node-b"]);
    b.stop().await;
    drop_db(&admin_url, &db).await;
}

/// The node named in a monitor's state endpoint.
async fn probed_by(app: &TestApp, id: &str) -> Option<String> {
    let st = app
        .send(
            reqwest::Method::GET,
            &format!("/vpnmon/{}/monitors/{id}/state", app.project_id),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(st.status, 200, "{}", st.raw);
    st.body["monitor_state"]["node"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_created_and_deleted_through_one_node_reach_the_other_at_once() {
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        eprintln!("skipping: {PG_ENV} not set (see .ci/pg-setup.sh)");
        return;
    };
    let (db, url) = fresh_db(&admin_url).await;
    let a = node(&url, "node-a").await;
    let b = node(&url, "node-b").await;
    for app in [&a, &b] {
        let start = Instant::now();
        while app.store.live_nodes().await.unwrap().len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A decides again at its next renewal after B joined (<= 2 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Monitors created through A's API until three belong to B: B hears
    // of each through the store's feed, not the 5-minute reconcile.
    let (g, e, _) = a.gateway().await;
    let (mut ids, mut conns, mut on_b) = (Vec::new(), Vec::new(), 0);
    let mut slowest = Duration::ZERO;
    for i in 1..=10 {
        let c = a.cgw(&format!("127.0.3.{i}")).await;
        let conn = a.connection(&g, &e, &c).await;
        let before = (engine_monitors(&a), engine_monitors(&b));
        let t = Instant::now();
        let id = a.monitor(&conn).await;
        let owner = probed_by(&a, &id).await.expect("a live node owns it");
        if owner == "node-b" {
            on_b += 1;
            until(
                "B's engine has the new monitor",
                Duration::from_secs(5),
                || engine_monitors(&b) == before.1 + 1,
            )
            .await;
        } else {
            assert_eq!(owner, "node-a");
            until(
                "A's engine has the new monitor",
                Duration::from_secs(5),
                || engine_monitors(&a) == before.0 + 1,
            )
            .await;
        }
        slowest = slowest.max(t.elapsed());
        ids.push(id);
        conns.push(conn);
        if on_b == 3 {
            break;
        }
    }
    assert_eq!(on_b, 3, "B owns none of {} monitors?", ids.len());
    assert_eq!(
        engine_monitors(&a) + engine_monitors(&b),
        ids.len() as u64,
        "each monitor in exactly one engine"
    );
    eprintln!("slowest create -> owner's engine: {slowest:?}");
    // Deleted through B (the monitor and a connection with its monitor):
    // the owner takes each off at once, whichever node it is.
    for id in &ids[..ids.len() / 2] {
        let r = b.delete(&format!("/connection-monitors/{id}")).await;
        assert_eq!(r.status, 204, "{}", r.raw);
    }
    for conn in &conns[ids.len() / 2..] {
        let r = b.delete(&format!("/vpn-connection/{conn}")).await;
        assert_eq!(r.status, 204, "{}", r.raw);
    }
    until("both engines empty", Duration::from_secs(5), || {
        engine_monitors(&a) + engine_monitors(&b) == 0
    })
    .await;
    // The listening connections are cut: each node listens again (and
    // reads every monitor again, for what it may have missed), and a
    // monitor created afterwards still reaches its owner at once.
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(cut.len(), 2, "one listening connection per node");
    for i in 20..=40 {
        let c = a.cgw(&format!("127.0.3.{i}")).await;
        let conn = a.connection(&g, &e, &c).await;
        let id = a.monitor(&conn).await;
        if probed_by(&a, &id).await.as_deref() == Some("node-b") {
            until(
                "B's engine has a monitor created after its feed was cut",
                Duration::from_secs(5),
                || engine_monitors(&b) == 1,
            )
            .await;
            break;
        }
        assert!(i < 40, "B owns none of 21 monitors?");
    }
    a.stop().await;
    b.stop().await;
    drop_db(&admin_url, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_at_once_on_an_empty_database_all_come_up_with_one_admin() {
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        eprintln!("skipping: {PG_ENV} not set (see .ci/pg-setup.sh)");
        return;
    };
    let (db, url) = fresh_db(&admin_url).await;
    // Each races the others to create domain, project and admin user; every
    // one logs in as that admin (spawn_with does) to the same project.
    let (a, b, c) = tokio::join!(
        node(&url, "node-a"),
        node(&url, "node-b"),
        node(&url, "node-c")
    );
    assert_eq!(a.project_id, b.project_id);
    assert_eq!(a.project_id, c.project_id);
    let projects = a.store.list_projects().await.unwrap();
    assert_eq!(
        projects.iter().filter(|p| p.name == "local-1").count(),
        1,
        "{projects:?}"
    );
    for n in [a, b, c] {
        n.stop().await;
    }
    drop_db(&admin_url, &db).await;
}
