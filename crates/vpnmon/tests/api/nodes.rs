//! `GET /vpnmon/nodes`: the live nodes, for the bootstrap admin only; a
//! clean stop leaves the membership at once.

use crate::helpers::{TestApp, keys};
use reqwest::Method;
use store::prelude::*;

#[tokio::test]
async fn nodes_lists_this_node_for_the_bootstrap_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(dir, |s| s.node_name = Some("node-a".into()), false).await;
    let r = app
        .send(Method::GET, "/vpnmon/nodes", Some(&app.token), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let nodes = r.body["nodes"].as_array().expect("a list of nodes");
    assert_eq!(nodes.len(), 1, "{}", r.raw);
    let n = &nodes[0];
    assert_eq!(
        keys(n),
        [
            "addresses",
            "expires_at",
            "heartbeat_at",
            "host",
            "id",
            "monitors",
            "name",
            "runs_jobs",
            "started_at"
        ]
    );
    assert_eq!(n["name"], "node-a");
    // The only node on SQLite runs the rollups and the retention (no
    // settle time: nothing else can hold a lease there).
    assert_eq!(n["runs_jobs"], true, "{}", r.raw);
    assert_eq!(n["monitors"], 0);
    assert_eq!(n["addresses"], serde_json::json!([]));
    let live = app.store.live_nodes().await.unwrap();
    assert_eq!(n["id"], live[0].id.to_string());
    assert!(domain::time::parse_marker(n["heartbeat_at"].as_str().unwrap()).is_some());
    app.stop().await;
}

#[tokio::test]
async fn nodes_is_403_for_a_user_who_is_not_the_bootstrap_admin() {
    let app = TestApp::spawn().await;
    let (other_token, _) = app.other_tenant("tenant-b").await;
    let m = app
        .send(Method::GET, "/vpnmon/nodes", Some(&other_token), None)
        .await
        .assert_error(403, "VPN.0003");
    assert!(m.contains("bootstrap admin"), "{m}");
    app.send(Method::GET, "/vpnmon/nodes", None, None)
        .await
        .assert_error(401, "APIGW.0301");
    app.stop().await;
}

#[tokio::test]
async fn a_clean_stop_leaves_the_membership_at_once() {
    let app = TestApp::spawn().await;
    let store = app.store.clone();
    assert_eq!(store.live_nodes().await.map(|l| l.len()), Ok(1));
    let dir = app.stop().await;
    let reopened = store::SqlStore::open_data_dir(dir.path()).await.unwrap();
    assert_eq!(
        reopened.live_nodes().await,
        Ok(vec![]),
        "the node deleted its row on SIGTERM-like stop"
    );
    reopened.close().await;
}

#[tokio::test]
async fn the_state_endpoint_names_the_probing_node_and_the_list_its_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(
        dir,
        |s| {
            s.node_name = Some("node-a".into());
            s.probe_interval = std::time::Duration::from_millis(900);
            s.probe_timeout = std::time::Duration::from_millis(200);
        },
        true,
    )
    .await;
    let (_, _, _, mon) = app.seed().await;
    let path = format!("/vpnmon/{}/monitors/{mon}/state", app.project_id);
    let st = app.send(Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(st.status, 200, "{}", st.raw);
    assert_eq!(st.body["monitor_state"]["node"], "node-a", "{}", st.raw);
    // The node publishes the kernel's local routes, loopback among them,
    // and (with the next renewal) how many monitors it probes.
    let mut last = serde_json::Value::Null;
    for _ in 0..40 {
        let r = app
            .send(Method::GET, "/vpnmon/nodes", Some(&app.token), None)
            .await;
        last = r.body["nodes"][0].clone();
        if last["monitors"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(last["monitors"], 1, "{last}");
    let addrs: Vec<String> = last["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(addrs.contains(&"127.0.0.0/8".to_string()), "{addrs:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_monitor_no_live_node_can_send_from_says_so() {
    // Without the probe engine the node can send from nothing.
    let app = TestApp::spawn().await;
    let (_, _, _, mon) = app.seed().await;
    let path = format!("/vpnmon/{}/monitors/{mon}/state", app.project_id);
    let st = app.send(Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(st.status, 200, "{}", st.raw);
    let s = &st.body["monitor_state"];
    assert_eq!(s["node"], serde_json::Value::Null, "{}", st.raw);
    assert_eq!(
        s["not_probed_reason"],
        format!(
            "no live node can send from {}",
            s["source_ip"].as_str().unwrap()
        )
        .as_str()
    );
    app.stop().await;
}

/// `vpnmon_monitors_unowned` on this node's metrics listener.
async fn unowned(app: &TestApp, metrics: &str) -> f64 {
    let text = app.scrape(metrics).await;
    text.lines()
        .find_map(|l| l.strip_prefix("vpnmon_monitors_unowned "))
        .unwrap_or_else(|| panic!("no vpnmon_monitors_unowned in {text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_no_live_node_can_send_from_are_counted_at_once_and_uncounted_when_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (app, metrics) = TestApp::spawn_with(
        dir,
        |s| {
            // 198.18.0.5 is on no interface of this host: no node can send
            // from it (so nothing is ever sent from it either).
            s.eip_pool = vec!["198.18.0.5".into(), "127.0.0.2".into()];
            s.probe_allow = vec!["127.0.0.0/8".parse().unwrap()];
            s.probe_interval = std::time::Duration::from_millis(900);
            s.probe_timeout = std::time::Duration::from_millis(200);
            s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        },
        true,
    )
    .await;
    let metrics = format!("http://{}/metrics", metrics.expect("metrics served"));
    assert_eq!(unowned(&app, &metrics).await, 0.0);
    let mut monitors = std::collections::BTreeMap::new();
    for k in 0..2 {
        let (g, e, ip) = app.gateway().await;
        let c = app.cgw(&format!("127.0.0.{}", 10 + k)).await;
        let conn = app.connection(&g, &e, &c).await;
        monitors.insert(ip, app.monitor(&conn).await);
    }
    let far = &monitors["198.18.0.5"];
    let near = &monitors["127.0.0.2"];
    // Counted as soon as it is created, not at the next reconcile.
    assert_eq!(unowned(&app, &metrics).await, 1.0);
    for (m, reason) in [
        (
            far,
            serde_json::json!("no live node can send from 198.18.0.5"),
        ),
        (near, serde_json::Value::Null),
    ] {
        let path = format!("/vpnmon/{}/monitors/{m}/state", app.project_id);
        let st = app.send(Method::GET, &path, Some(&app.token), None).await;
        assert_eq!(
            st.body["monitor_state"]["not_probed_reason"], reason,
            "{}",
            st.raw
        );
    }
    let r = app.delete(&format!("/connection-monitors/{far}")).await;
    assert_eq!(r.status, 204, "{}", r.raw);
    assert_eq!(unowned(&app, &metrics).await, 0.0);
    app.stop().await;
}
