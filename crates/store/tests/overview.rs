//! Conformance of the dashboard's overview query ([`store::OverviewStore`])
//! on every engine, with the suite's harness (`conformance/harness.rs`): a
//! fresh store per case, `sqlite::<case>` and `postgres::<case>`.

#[path = "conformance/harness.rs"]
mod harness;

use chrono::Utc;
use domain::ProjectId;
use domain::connection::{CreateConnection, VpnConnection};
use domain::customer_gateway::CreateCgw;
use domain::eip::pool_entry_id;
use domain::gateway::{CreateVgw, VpnGateway};
use domain::monitor::ConnectionMonitor;
use harness::{TestDb, on_every_engine};
use serde_json::json;
use store::prelude::*;
use store::{LinkState, OverviewRow, SqlStore, WindowPoint};

on_every_engine! {
    store: [
        overview_lists_every_monitor_with_its_connection_link_and_newest_window,
        overview_is_scoped_to_the_project,
    ],
    db: [
        overview_reads_what_a_reopened_store_holds,
    ],
}

const POOL: [&str; 4] = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];

fn now() -> String {
    domain::time::wire_ms(Utc::now())
}

fn uuid() -> String {
    domain::ids::new_resource_id()
}

async fn gateway(store: &SqlStore, p: &ProjectId) -> VpnGateway {
    let req: CreateVgw = serde_json::from_value(json!({
        "vpc_id": uuid(), "connect_subnet": uuid(), "local_subnets": ["192.168.0.0/24"],
        "eip1": {"type": "5_bgp", "bandwidth_size": 10},
    }))
    .expect("a CreateVgw body");
    let plan = domain::gateway::plan_create(req, domain::GatewayId::random(), &now())
        .expect("a valid gateway");
    store.create_gateway(p, plan).await.expect("create gateway")
}

/// A connection named `name` to a new customer gateway at `addr`, and its monitor.
async fn monitored(
    store: &SqlStore,
    p: &ProjectId,
    g: &VpnGateway,
    name: &str,
    addr: &str,
) -> (VpnConnection, ConnectionMonitor) {
    let req: CreateCgw = serde_json::from_value(json!({"id_value": addr})).expect("a CreateCgw");
    let cgw = domain::customer_gateway::create(req, domain::CustomerGatewayId::random(), &now())
        .expect("a valid cgw");
    let cgw = store.create_cgw(p, &cgw).await.expect("create cgw");
    let eip = g.eip1.as_ref().expect("eip1").id.clone();
    let req: CreateConnection = serde_json::from_value(json!({
        "name": name, "vgw_id": g.id, "vgw_ip": eip, "cgw_id": cgw.id,
        "peer_subnets": ["10.10.0.0/16"], "psk": "Abcd1234!x",
    }))
    .expect("a CreateConnection body");
    let conn = store
        .create_connection(p, req, domain::ConnectionId::random())
        .await
        .expect("create connection");
    let m = store
        .create_monitor(p, &conn.id, domain::MonitorId::random())
        .await
        .expect("create monitor");
    (conn, m)
}

fn point(m: &ConnectionMonitor, p: &ProjectId, t: i64, received: i64, avg: f64) -> WindowPoint {
    let up = received > 0;
    WindowPoint {
        monitor_id: m.id,
        project_id: p.clone(),
        window_start_ms: t,
        sent: 4,
        received,
        loss_pct: 25.0 * (4 - received) as f64,
        rtt_min_ms: up.then_some(avg - 0.5),
        rtt_avg_ms: up.then_some(avg),
        rtt_max_ms: up.then_some(avg + 0.5),
        jitter_ms: up.then_some(0.25),
    }
}

async fn with_pool(store: &SqlStore) {
    let entries: Vec<(String, String)> = POOL
        .iter()
        .map(|a| {
            (
                pool_entry_id(&a.parse().expect("an address")),
                a.to_string(),
            )
        })
        .collect();
    store.add_pool(&entries).await.expect("add pool");
}

async fn overview_lists_every_monitor_with_its_connection_link_and_newest_window(store: &SqlStore) {
    with_pool(store).await;
    let p = ProjectId::generate();
    let g = gateway(store, &p).await;
    let (c1, m1) = monitored(store, &p, &g, "alpha", "127.0.0.10").await;
    let (c2, m2) = monitored(store, &p, &g, "bravo", "127.0.0.11").await;
    let (c3, m3) = monitored(store, &p, &g, "charlie", "127.0.0.12").await;
    let t: i64 = 1_700_000_000_000;
    // m1: windows across several 10 s buckets, the newest wins; m2: only
    // an old one (before `since`); m3: none.
    store
        .insert_points(&[
            point(&m1, &p, t - 30_000, 4, 1.0),
            point(&m1, &p, t - 20_000, 4, 2.0),
            point(&m1, &p, t + 5_000, 3, 3.0),
            point(&m1, &p, t - 10_000, 0, 0.0),
            point(&m2, &p, t - 600_000, 4, 9.0),
        ])
        .await
        .unwrap();
    let link = LinkState {
        up: Some(false),
        changed_us: Some(42),
        note: None,
    };
    store.set_link_state(&m2.id, &link).await.unwrap();
    let note = LinkState {
        up: None,
        changed_us: None,
        note: Some("outside the probe allowlist".into()),
    };
    store.set_link_state(&m3.id, &note).await.unwrap();
    store.set_monitor_status(&m1.id, "ACTIVE").await.unwrap();

    let rows = store.overview(&p, t - 25_000).await.unwrap();
    let row = |c: &VpnConnection, m: &ConnectionMonitor| OverviewRow {
        monitor_id: m.id.to_string(),
        vpn_connection_id: c.id.to_string(),
        connection_name: c.name.clone(),
        source_ip: "127.0.0.2".into(),
        destination_ip: m.destination_ip.clone(),
        status: m.status.clone(),
        link: LinkState::default(),
        last: None,
        alarms: store::AlarmSummary::default(),
    };
    assert_eq!(
        rows,
        vec![
            OverviewRow {
                status: "ACTIVE".into(),
                last: Some(point(&m1, &p, t + 5_000, 3, 3.0)),
                ..row(&c1, &m1)
            },
            OverviewRow {
                link,
                ..row(&c2, &m2)
            },
            OverviewRow {
                link: note,
                ..row(&c3, &m3)
            },
        ],
        "in creation order"
    );
    assert_eq!(rows[2].destination_ip, "127.0.0.12");
    // A `since` within a bucket: the windows before it in that bucket do not count.
    let rows = store.overview(&p, t - 15_000).await.unwrap();
    assert_eq!(
        rows[0].last.as_ref().map(|w| w.window_start_ms),
        Some(t + 5_000)
    );
    let rows = store.overview(&p, t + 6_000).await.unwrap();
    assert!(rows.iter().all(|r| r.last.is_none()), "nothing that recent");
    let rows = store.overview(&p, 0).await.unwrap();
    assert_eq!(rows[1].last.as_ref().map(|w| w.rtt_avg_ms), Some(Some(9.0)));
}

async fn overview_is_scoped_to_the_project(store: &SqlStore) {
    with_pool(store).await;
    let (a, b) = (ProjectId::generate(), ProjectId::generate());
    let ga = gateway(store, &a).await;
    let gb = gateway(store, &b).await;
    let (_, ma) = monitored(store, &a, &ga, "ours", "127.0.0.10").await;
    let (_, mb) = monitored(store, &b, &gb, "theirs", "127.0.0.10").await;
    let t: i64 = 1_700_000_000_000;
    store
        .insert_points(&[point(&ma, &a, t, 4, 1.0), point(&mb, &b, t, 2, 5.0)])
        .await
        .unwrap();
    let ours = store.overview(&a, t - 60_000).await.unwrap();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].monitor_id, ma.id);
    assert_eq!(ours[0].last, Some(point(&ma, &a, t, 4, 1.0)));
    let theirs = store.overview(&b, t - 60_000).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].last, Some(point(&mb, &b, t, 2, 5.0)));
    let nobody = store
        .overview(&ProjectId::generate(), t - 60_000)
        .await
        .unwrap();
    assert_eq!(nobody, vec![]);
}

async fn overview_reads_what_a_reopened_store_holds(db: &TestDb) {
    let store = db.open().await;
    with_pool(&store).await;
    let p = ProjectId::generate();
    let g = gateway(&store, &p).await;
    let (c, m) = monitored(&store, &p, &g, "kept", "127.0.0.10").await;
    let t: i64 = 1_700_000_000_000;
    store
        .insert_points(&[point(&m, &p, t, 1, 4.0)])
        .await
        .unwrap();
    store.close().await;
    let store = db.open().await;
    let rows = store.overview(&p, t).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].connection_name, c.name);
    assert_eq!(rows[0].last, Some(point(&m, &p, t, 1, 4.0)));
    store.close().await;
}
