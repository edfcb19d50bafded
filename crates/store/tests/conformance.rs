//! The store conformance suite: one set of cases, run against every engine
//! (Garage's `src/db/test.rs` habit). Each case gets a store of its own: a
//! fresh SQLite directory, or a fresh PostgreSQL database when
//! `VPNMON_TEST_DATABASE_URL` names a server (`.ci/pg-setup.sh` prepares a
//! local one); without it the PostgreSQL half says it skips.
//!
//! Tests are named `sqlite::<case>` and `postgres::<case>`, so
//! `cargo test -p store --test conformance postgres::` runs one engine.
//! Resources are created through the domain functions, as the API does, so
//! the cases exercise the records the store really receives.

#[path = "conformance/harness.rs"]
mod harness;

use domain::connection::{CreateConnection, UpdateConnection, VpnConnection};
use domain::customer_gateway::{CreateCgw, CustomerGateway, UpdateCgw};
use domain::eip::{Eip, EipRequest, pool_entry_id};
use domain::gateway::{CreateVgw, GatewayPlan, UpdateVgw, VpnGateway};
use domain::monitor::{ConnectionMonitor, status};
use domain::{ConnectionId, DomainError, MonitorId, ProjectId};
use harness::{TestDb, on_every_engine};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use store::prelude::*;
use store::{
    Agg, ConnectionFilter, CredentialRecord, LinkState, Listed, MonitorUpdate, Page, ProbeMonitor,
    Rollup, SqlStore, TokenRecord, WindowPoint,
};

on_every_engine! {
    store: [
        iam_domains_projects_and_users,
        iam_grants_list_a_users_projects,
        iam_tokens_round_trip_and_revoke,
        iam_credentials_crud,
        meta_keeps_the_first_value,
        meta_first_value_wins_under_concurrency,
        eip_pool_add_is_idempotent,
        eip_allocation_takes_first_free_in_seq_order,
        eip_bind_by_id_rejects_bound_and_unknown_entries,
        eip_exhausted_pool_is_invalid_and_rolls_back,
        eip_deleting_a_gateway_returns_its_eips,
        eip_bound_in_one_project_cannot_be_bound_by_another,
        eip_concurrent_allocations_each_get_their_own,
        gateway_crud,
        gateway_update_rebinds_eip_unless_a_connection_uses_it,
        cgw_crud,
        connection_crud,
        connection_create_checks_its_references,
        gateway_and_cgw_in_use_cannot_be_deleted,
        monitor_crud_and_connection_monitor_id,
        second_monitor_is_monitor_exists,
        monitor_of_fqdn_cgw_is_invalid,
        connection_cgw_cannot_change_while_monitored,
        deleting_a_connection_deletes_its_monitor_and_points,
        tenant_isolation,
        cgw_pagination,
        connection_pagination,
        connection_filters,
        monitor_list_filter,
        monitors_for_probing_and_status,
        link_state_round_trip,
        monitor_updates_apply_in_one_batch,
        points_insert_list_prune,
        points_insert_in_chunks,
        points_ranges_across_time_buckets,
        rollups_aggregate_each_window_once,
        longer_periods_roll_up_from_shorter_ones_exactly,
    ],
    db: [
        data_survives_reopen,
    ],
}

// ---------- fixtures ----------

const POOL: [&str; 8] = [
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.4",
    "127.0.0.5",
    "127.0.0.6",
    "127.0.0.7",
    "127.0.0.8",
    "127.0.0.9",
];

/// The pool entry id of one of the [`POOL`] addresses.
fn eip_id(addr: &str) -> String {
    pool_entry_id(&addr.parse().expect("an IP address"))
}

fn pool_entries() -> Vec<(String, String)> {
    POOL.iter().map(|a| (eip_id(a), a.to_string())).collect()
}

async fn with_pool(store: &SqlStore) {
    assert_eq!(store.add_pool(&pool_entries()).await, Ok(POOL.len()));
}

fn now() -> String {
    domain::time::wire_ms(harness::now())
}

/// The pool as (id, address, project, gateway) rows.
async fn pool_rows(
    store: &SqlStore,
) -> store::Result<Vec<(String, String, Option<String>, Option<String>)>> {
    store.list_pool().await.map(|v| {
        v.into_iter()
            .map(|e| (e.id, e.address, e.project_id, e.vgw_id))
            .collect()
    })
}

/// A fresh id of any resource type (of nothing stored yet).
fn id<T: domain::ResourceId>() -> T {
    T::random()
}

fn uuid() -> String {
    domain::ids::new_resource_id()
}

fn params_eip() -> Value {
    json!({"type": "5_bgp", "bandwidth_size": 10})
}

/// A valid public gateway body, with `eip1` asked for by parameters.
fn gateway_body() -> Value {
    json!({
        "vpc_id": uuid(),
        "connect_subnet": uuid(),
        "local_subnets": ["192.168.0.0/24"],
        "eip1": params_eip(),
    })
}

fn plan(body: Value) -> GatewayPlan {
    let req: CreateVgw = serde_json::from_value(body).expect("a CreateVgw body");
    domain::gateway::plan_create(req, id(), &now()).expect("a valid gateway")
}

async fn try_gateway(store: &SqlStore, p: &ProjectId, body: Value) -> store::Result<VpnGateway> {
    store.create_gateway(p, plan(body)).await
}

async fn gateway(store: &SqlStore, p: &ProjectId, body: Value) -> VpnGateway {
    try_gateway(store, p, body).await.expect("create gateway")
}

fn eip1_id(g: &VpnGateway) -> String {
    g.eip1
        .as_ref()
        .expect("a public gateway has eip1")
        .id
        .clone()
}

fn eip1_address(g: &VpnGateway) -> &str {
    &g.eip1
        .as_ref()
        .expect("a public gateway has eip1")
        .ip_address
}

fn cgw_record(body: Value) -> CustomerGateway {
    let req: CreateCgw = serde_json::from_value(body).expect("a CreateCgw body");
    domain::customer_gateway::create(req, id(), &now()).expect("a valid customer gateway")
}

async fn cgw(store: &SqlStore, p: &ProjectId) -> CustomerGateway {
    store
        .create_cgw(p, &cgw_record(json!({"id_value": "127.0.0.10"})))
        .await
        .expect("create customer gateway")
}

fn connection_req(
    vgw_id: &(dyn Display + Sync),
    vgw_ip: &str,
    cgw_id: &(dyn Display + Sync),
) -> CreateConnection {
    serde_json::from_value(json!({
        "vgw_id": vgw_id.to_string(),
        "vgw_ip": vgw_ip,
        "cgw_id": cgw_id.to_string(),
        "peer_subnets": ["10.10.0.0/16"],
        "psk": "Abcd1234!x",
    }))
    .expect("a CreateConnection body")
}

async fn try_connection(
    store: &SqlStore,
    p: &ProjectId,
    vgw_id: &(dyn Display + Sync),
    vgw_ip: &str,
    cgw_id: &(dyn Display + Sync),
) -> store::Result<VpnConnection> {
    store
        .create_connection(p, connection_req(vgw_id, vgw_ip, cgw_id), id())
        .await
}

async fn connection(
    store: &SqlStore,
    p: &ProjectId,
    g: &VpnGateway,
    c: &CustomerGateway,
) -> VpnConnection {
    try_connection(store, p, &g.id, &eip1_id(g), &c.id)
        .await
        .expect("create connection")
}

async fn monitor(store: &SqlStore, p: &ProjectId, conn: &VpnConnection) -> ConnectionMonitor {
    store
        .create_monitor(p, &conn.id, id())
        .await
        .expect("create monitor")
}

/// A project with the pool loaded and a gateway, customer gateway and
/// connection in it.
struct Setup {
    p: ProjectId,
    gw: VpnGateway,
    cgw: CustomerGateway,
    conn: VpnConnection,
}

async fn setup(store: &SqlStore) -> Setup {
    with_pool(store).await;
    let p = ProjectId::generate();
    let gw = gateway(store, &p, gateway_body()).await;
    let cgw = cgw(store, &p).await;
    let conn = connection(store, &p, &gw, &cgw).await;
    Setup { p, gw, cgw, conn }
}

fn point(m: &ConnectionMonitor, p: &ProjectId, window_start_ms: i64, received: i64) -> WindowPoint {
    let up = received > 0;
    WindowPoint {
        monitor_id: m.id,
        project_id: p.clone(),
        window_start_ms,
        sent: 10,
        received,
        loss_pct: 100.0 * (10 - received) as f64 / 10.0,
        rtt_min_ms: up.then_some(0.125),
        rtt_avg_ms: up.then_some(1.5),
        rtt_max_ms: up.then_some(3.75),
        jitter_ms: up.then_some(0.625),
    }
}

/// Opens several pool connections up front, so that the concurrent calls
/// that follow really overlap instead of queueing behind connection setup.
async fn warm_up(store: &SqlStore) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { pool_rows(&store).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("list_pool");
    }
}

fn nf<T>() -> store::Result<T> {
    Err(DomainError::NotFound)
}

fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::Invalid(msg.into())
}

fn ids<T, D: Display + ?Sized>(items: &[T], id: impl Fn(&T) -> &D) -> Vec<String> {
    items.iter().map(|i| id(i).to_string()).collect()
}

/// Walks every page of a list with `limit`, checking `total` on each page
/// and that every marker is the last item's `created_at` (creation times are
/// unique per project at millisecond precision); returns the items and the
/// page sizes.
async fn walk_pages<T, F, Fut>(
    mut fetch: F,
    limit: i64,
    total: i64,
    created_at: impl Fn(&T) -> &str,
) -> (Vec<T>, Vec<usize>)
where
    F: FnMut(Page) -> Fut,
    Fut: Future<Output = store::Result<Listed<T>>>,
{
    let mut marker_us = None;
    let mut items = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = fetch(Page {
            limit: Some(limit),
            marker_us,
        })
        .await
        .expect("list a page");
        assert_eq!(page.total, total, "total counts every page");
        let Some(last) = page.items.last() else {
            assert_eq!(page.next_marker, None, "an empty page has no marker");
            break;
        };
        let marker = page.next_marker.as_deref().expect("a page has a marker");
        assert_eq!(
            marker,
            created_at(last),
            "the marker is the last item's created_at"
        );
        marker_us = Some(domain::time::parse_marker(marker).expect("the marker is RFC 3339"));
        sizes.push(page.items.len());
        items.extend(page.items);
        assert!(sizes.len() <= 10, "pagination does not end");
    }
    (items, sizes)
}

// ---------- IAM ----------

async fn iam_domains_projects_and_users(store: &SqlStore) {
    assert_eq!(store.has_users().await, Ok(false));

    let d = store.create_domain("acme").await.unwrap();
    assert_eq!(d.name, "acme");
    assert_eq!(d.id.len(), 32);
    assert_eq!(
        store.create_domain("acme").await,
        Err(invalid(r#"domain "acme" already exists"#))
    );
    assert_eq!(store.find_domain("acme").await, Ok(Some(d.clone())));
    assert_eq!(store.get_domain(&d.id).await, Ok(Some(d.clone())));
    assert_eq!(store.find_domain("nobody").await, Ok(None));
    assert_eq!(store.get_domain("0".repeat(32).as_str()).await, Ok(None));
    let other = store.create_domain("globex").await.unwrap();

    let p1 = store.create_project(&d.id, "region-1").await.unwrap();
    assert_eq!(
        (p1.domain_id.as_str(), p1.name.as_str()),
        (d.id.as_str(), "region-1")
    );
    assert!(ProjectId::parse(&p1.id).is_some(), "project id {}", p1.id);
    assert_eq!(
        store.create_project(&other.id, "region-1").await,
        Err(invalid(r#"project "region-1" already exists"#))
    );
    let p2 = store.create_project(&d.id, "region-2").await.unwrap();
    assert_eq!(store.find_project("region-1").await, Ok(Some(p1.clone())));
    assert_eq!(store.get_project(&p2.id).await, Ok(Some(p2.clone())));
    assert_eq!(store.find_project("region-3").await, Ok(None));
    assert_eq!(store.get_project(&"f".repeat(32)).await, Ok(None));
    assert_eq!(store.list_projects().await, Ok(vec![p1, p2]));

    let u = store
        .create_user(&d.id, "alice", "$argon2id$a")
        .await
        .unwrap();
    assert_eq!(
        (
            u.domain_id.as_str(),
            u.name.as_str(),
            u.password_hash.as_str()
        ),
        (d.id.as_str(), "alice", "$argon2id$a")
    );
    assert_eq!(store.has_users().await, Ok(true));
    assert_eq!(
        store.create_user(&d.id, "alice", "$argon2id$b").await,
        Err(invalid(r#"user "alice" already exists"#))
    );
    assert_eq!(store.find_user(&d.id, "alice").await, Ok(Some(u.clone())));
    assert_eq!(store.find_user(&other.id, "alice").await, Ok(None));
    assert_eq!(store.get_user(&u.id).await, Ok(Some(u.clone())));
    assert_eq!(store.get_user(&"0".repeat(32)).await, Ok(None));
    assert_eq!(store.find_user_any_domain("alice").await, Ok(Some(u)));
    assert_eq!(store.find_user_any_domain("bob").await, Ok(None));

    // The same name in another domain is another user, which makes the
    // name ambiguous across domains.
    let u2 = store
        .create_user(&other.id, "alice", "$argon2id$c")
        .await
        .unwrap();
    assert_eq!(store.find_user(&other.id, "alice").await, Ok(Some(u2)));
    assert_eq!(
        store.find_user_any_domain("alice").await,
        Err(invalid(r#"user name "alice" exists in several domains"#))
    );
}

async fn iam_grants_list_a_users_projects(store: &SqlStore) {
    let d = store.create_domain("acme").await.unwrap();
    let p1 = store.create_project(&d.id, "one").await.unwrap();
    let p2 = store.create_project(&d.id, "two").await.unwrap();
    let _p3 = store.create_project(&d.id, "three").await.unwrap();
    let alice = store.create_user(&d.id, "alice", "h").await.unwrap();
    let bob = store.create_user(&d.id, "bob", "h").await.unwrap();

    assert_eq!(store.user_projects(&alice.id).await, Ok(vec![]));
    store.grant(&alice.id, &p2.id).await.unwrap();
    store.grant(&alice.id, &p1.id).await.unwrap();
    assert_eq!(
        store.grant(&alice.id, &p1.id).await,
        Ok(()),
        "granting twice is harmless"
    );
    store.grant(&bob.id, &p2.id).await.unwrap();
    assert_eq!(
        store.user_projects(&alice.id).await,
        Ok(vec![p1, p2.clone()]),
        "in project creation order"
    );
    assert_eq!(store.user_projects(&bob.id).await, Ok(vec![p2]));
}

async fn iam_tokens_round_trip_and_revoke(store: &SqlStore) {
    let d = store.create_domain("acme").await.unwrap();
    let p = store.create_project(&d.id, "one").await.unwrap();
    let u = store.create_user(&d.id, "alice", "h").await.unwrap();
    let t = TokenRecord {
        digest: "digest-1".into(),
        user_id: u.id.clone(),
        project_id: p.id.clone(),
        issued_us: 1_700_000_000_000_000,
        expires_us: 1_700_086_400_000_000,
        revoked: false,
    };
    store.insert_token(&t).await.unwrap();
    assert_eq!(store.get_token("digest-1").await, Ok(Some(t.clone())));
    assert_eq!(store.get_token("digest-2").await, Ok(None));

    assert_eq!(store.revoke_token("digest-1").await, Ok(true));
    assert_eq!(
        store.get_token("digest-1").await,
        Ok(Some(TokenRecord { revoked: true, ..t }))
    );
    assert_eq!(store.revoke_token("digest-2").await, Ok(false));
}

async fn iam_credentials_crud(store: &SqlStore) {
    let d = store.create_domain("acme").await.unwrap();
    let alice = store.create_user(&d.id, "alice", "h").await.unwrap();
    let bob = store.create_user(&d.id, "bob", "h").await.unwrap();
    let cred = |access: &str, user: &str, created_us: i64| CredentialRecord {
        access: access.into(),
        user_id: user.into(),
        sealed_secret: format!("sealed-{access}"),
        enabled: true,
        description: format!("key {access}"),
        created_us,
    };
    let a1 = cred("AKALICE1", &alice.id, 100);
    let a2 = CredentialRecord {
        description: String::new(),
        ..cred("AKALICE2", &alice.id, 300)
    };
    let b1 = cred("AKBOB1", &bob.id, 200);
    for c in [&a1, &a2, &b1] {
        store.insert_credential(c).await.unwrap();
    }

    assert_eq!(store.get_credential("AKALICE2").await, Ok(Some(a2.clone())));
    assert_eq!(store.get_credential("AKNOBODY").await, Ok(None));
    assert_eq!(
        store.list_credentials(None).await,
        Ok(vec![a1.clone(), b1.clone(), a2.clone()]),
        "ordered by creation time"
    );
    assert_eq!(
        store.list_credentials(Some(&alice.id)).await,
        Ok(vec![a1.clone(), a2.clone()])
    );

    assert_eq!(
        store.set_credential_enabled("AKALICE1", false).await,
        Ok(true)
    );
    let disabled = CredentialRecord {
        enabled: false,
        ..a1.clone()
    };
    assert_eq!(
        store.get_credential("AKALICE1").await,
        Ok(Some(disabled.clone()))
    );
    assert_eq!(
        store.set_credential_enabled("AKALICE1", true).await,
        Ok(true)
    );
    assert_eq!(store.get_credential("AKALICE1").await, Ok(Some(a1.clone())));
    assert_eq!(
        store.set_credential_enabled("AKNOBODY", true).await,
        Ok(false)
    );

    assert_eq!(store.delete_credential("AKALICE1").await, Ok(true));
    assert_eq!(store.delete_credential("AKALICE1").await, Ok(false));
    assert_eq!(store.get_credential("AKALICE1").await, Ok(None));
    assert_eq!(store.list_credentials(Some(&alice.id)).await, Ok(vec![a2]));
    assert_eq!(store.list_credentials(Some(&bob.id)).await, Ok(vec![b1]));
}

async fn meta_keeps_the_first_value(store: &SqlStore) {
    assert_eq!(
        store.meta_get_or_init("master_key", "first").await,
        Ok("first".to_string())
    );
    assert_eq!(
        store.meta_get_or_init("master_key", "second").await,
        Ok("first".to_string())
    );
    assert_eq!(
        store.meta_get_or_init("other", "x").await,
        Ok("x".to_string())
    );
    assert_eq!(
        store.meta_get_or_init("master_key", "third").await,
        Ok("first".to_string())
    );
}

/// Two processes starting on one database at once must agree on one value
/// (e.g. the key that seals credentials).
async fn meta_first_value_wins_under_concurrency(store: &SqlStore) {
    warm_up(store).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .meta_get_or_init("master_key", &format!("value-{i}"))
                    .await
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in tasks {
        seen.insert(t.await.expect("task").expect("meta_get_or_init"));
    }
    assert_eq!(seen.len(), 1, "every caller sees the same value: {seen:?}");
    let winner = seen.into_iter().next().unwrap_or_default();
    assert_eq!(
        store.meta_get_or_init("master_key", "late").await,
        Ok(winner)
    );
}

// ---------- EIP pool ----------

async fn eip_pool_add_is_idempotent(store: &SqlStore) {
    assert_eq!(pool_rows(store).await, Ok(vec![]));
    let entries = pool_entries();
    assert_eq!(store.add_pool(&entries[..5]).await, Ok(5));
    assert_eq!(store.add_pool(&entries[..5]).await, Ok(0));
    assert_eq!(
        store.add_pool(&entries).await,
        Ok(3),
        "only the new entries are added"
    );
    let free: Vec<_> = entries
        .iter()
        .map(|(id, a)| (id.clone(), a.clone(), None, None))
        .collect();
    assert_eq!(pool_rows(store).await, Ok(free), "in the order added");
}

async fn eip_allocation_takes_first_free_in_seq_order(store: &SqlStore) {
    with_pool(store).await;
    let p = ProjectId::generate();

    let mut body = gateway_body();
    body["eip2"] = json!({"type": "5_sbgp", "bandwidth_size": 20, "charge_mode": "traffic"});
    let g1 = gateway(store, &p, body.clone()).await;
    let req1: EipRequest = serde_json::from_value(params_eip()).unwrap();
    let req2: EipRequest = serde_json::from_value(body["eip2"].clone()).unwrap();
    assert_eq!(
        g1.eip1,
        Some(Eip::bound(&eip_id("127.0.0.2"), "127.0.0.2", &req1))
    );
    assert_eq!(
        g1.eip2,
        Some(Eip::bound(&eip_id("127.0.0.3"), "127.0.0.3", &req2))
    );

    // By id: any free entry, out of order.
    let mut body = gateway_body();
    body["eip1"] = json!({"id": eip_id("127.0.0.7")});
    let g2 = gateway(store, &p, body).await;
    assert_eq!(eip1_address(&g2), "127.0.0.7");

    // By parameters again: the first free one, skipping .7.
    let g3 = gateway(store, &p, gateway_body()).await;
    assert_eq!(eip1_address(&g3), "127.0.0.4");

    let bound = |addr: &str, g: &VpnGateway| {
        (
            eip_id(addr),
            addr.to_string(),
            Some(p.to_string()),
            Some(g.id.to_string()),
        )
    };
    let free = |addr: &str| (eip_id(addr), addr.to_string(), None, None);
    assert_eq!(
        pool_rows(store).await,
        Ok(vec![
            bound("127.0.0.2", &g1),
            bound("127.0.0.3", &g1),
            bound("127.0.0.4", &g3),
            free("127.0.0.5"),
            free("127.0.0.6"),
            bound("127.0.0.7", &g2),
            free("127.0.0.8"),
            free("127.0.0.9"),
        ])
    );
}

async fn eip_bind_by_id_rejects_bound_and_unknown_entries(store: &SqlStore) {
    with_pool(store).await;
    let p = ProjectId::generate();
    let g1 = gateway(store, &p, gateway_body()).await;
    let taken = eip1_id(&g1);

    let mut body = gateway_body();
    body["eip1"] = json!({"id": taken});
    assert_eq!(
        try_gateway(store, &p, body).await,
        Err(invalid(format!(
            "vpn_gateway.eip1.id {taken} is already bound to a VPN gateway"
        )))
    );

    let unknown = uuid();
    let mut body = gateway_body();
    body["eip2"] = json!({"id": unknown});
    assert_eq!(
        try_gateway(store, &p, body).await,
        Err(invalid(format!(
            "vpn_gateway.eip2.id {unknown} is not an EIP of this project's pool"
        )))
    );
    // The failed creates bound nothing and left no gateway behind.
    assert_eq!(store.list_gateways(&p, None, &[]).await, Ok(vec![g1]));
    let bound: Vec<_> = pool_rows(store)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.3.is_some())
        .map(|e| e.1)
        .collect();
    assert_eq!(bound, vec!["127.0.0.2".to_string()]);
}

async fn eip_exhausted_pool_is_invalid_and_rolls_back(store: &SqlStore) {
    with_pool(store).await;
    let p = ProjectId::generate();
    let mut made = Vec::new();
    for _ in 0..POOL.len() - 1 {
        made.push(gateway(store, &p, gateway_body()).await);
    }

    // One entry left: eip1 takes it, eip2 finds none, and the whole create
    // is undone.
    let mut body = gateway_body();
    body["eip2"] = params_eip();
    let err = try_gateway(store, &p, body).await.unwrap_err();
    assert_eq!(
        err,
        invalid(
            "vpn_gateway.eip2: the EIP pool is exhausted (the operator sets it with --eip-pool)"
        )
    );
    assert!(err.to_string().contains("exhausted"));
    let pool = pool_rows(store).await.unwrap();
    assert_eq!(
        pool.last(),
        Some(&(eip_id("127.0.0.9"), "127.0.0.9".to_string(), None, None)),
        "the entry eip1 took is free again"
    );
    assert_eq!(store.list_gateways(&p, None, &[]).await, Ok(made.clone()));

    let last = gateway(store, &p, gateway_body()).await;
    assert_eq!(eip1_address(&last), "127.0.0.9");
    let err = try_gateway(store, &p, gateway_body()).await.unwrap_err();
    assert_eq!(
        err,
        invalid(
            "vpn_gateway.eip1: the EIP pool is exhausted (the operator sets it with --eip-pool)"
        )
    );
}

async fn eip_deleting_a_gateway_returns_its_eips(store: &SqlStore) {
    with_pool(store).await;
    let p = ProjectId::generate();
    let mut body = gateway_body();
    body["eip2"] = params_eip();
    let g = gateway(store, &p, body).await;
    let keep = gateway(store, &p, gateway_body()).await;
    assert_eq!(eip1_address(&keep), "127.0.0.4");

    store.delete_gateway(&p, &g.id).await.unwrap();
    let pool = pool_rows(store).await.unwrap();
    assert_eq!(
        pool[0],
        (eip_id("127.0.0.2"), "127.0.0.2".into(), None, None)
    );
    assert_eq!(
        pool[1],
        (eip_id("127.0.0.3"), "127.0.0.3".into(), None, None)
    );
    assert_eq!(pool[2].3.as_deref(), Some(keep.id.to_string().as_str()));

    // Freed entries are allocated again, first in seq order.
    let again = gateway(store, &p, gateway_body()).await;
    assert_eq!(eip1_address(&again), "127.0.0.2");
}

async fn eip_bound_in_one_project_cannot_be_bound_by_another(store: &SqlStore) {
    with_pool(store).await;
    let (a, b) = (ProjectId::generate(), ProjectId::generate());
    let ga = gateway(store, &a, gateway_body()).await;
    let id = eip1_id(&ga);

    let mut body = gateway_body();
    body["eip1"] = json!({"id": id});
    assert_eq!(
        try_gateway(store, &b, body.clone()).await,
        Err(invalid(format!(
            "vpn_gateway.eip1.id {id} is not an EIP of this project's pool"
        ))),
        "another project's EIP is not even named as bound"
    );
    // B allocating by parameters skips A's entry.
    let gb = gateway(store, &b, gateway_body()).await;
    assert_eq!(eip1_address(&gb), "127.0.0.3");

    // Once A's gateway is gone the entry is free for anyone.
    store.delete_gateway(&a, &ga.id).await.unwrap();
    let gb2 = gateway(store, &b, body).await;
    assert_eq!(eip1_address(&gb2), "127.0.0.2");
}

/// Concurrent creates (PostgreSQL runs them in parallel) each bind their own
/// EIPs, none waits for another's (two gateways each holding the entry the
/// other wants would deadlock), and none is told the pool is exhausted while
/// entries are free.
async fn eip_concurrent_allocations_each_get_their_own(store: &SqlStore) {
    const GATEWAYS: usize = 24;
    // Every other gateway asks for two EIPs.
    let pool: Vec<String> = (1..=GATEWAYS + GATEWAYS / 2)
        .map(|i| format!("198.18.0.{i}"))
        .collect();
    let entries: Vec<_> = pool.iter().map(|a| (eip_id(a), a.clone())).collect();
    assert_eq!(store.add_pool(&entries).await, Ok(pool.len()));
    warm_up(store).await;
    let p = ProjectId::generate();
    let tasks: Vec<_> = (0..GATEWAYS)
        .map(|i| {
            let (store, p) = (store.clone(), p.clone());
            let mut body = gateway_body();
            if i % 2 == 0 {
                body["eip2"] = params_eip();
            }
            tokio::spawn(async move { try_gateway(&store, &p, body).await })
        })
        .collect();
    let mut addresses = Vec::new();
    for t in tasks {
        let g = t.await.expect("task").expect("create gateway");
        addresses.push(eip1_address(&g).to_string());
        addresses.extend(g.eip2.map(|e| e.ip_address));
    }
    addresses.sort_by_key(|a| a.parse::<std::net::Ipv4Addr>().ok());
    assert_eq!(addresses, pool);
    assert!(
        pool_rows(store)
            .await
            .unwrap()
            .iter()
            .all(|e| e.3.is_some())
    );
}

// ---------- gateways, customer gateways, connections ----------

async fn gateway_crud(store: &SqlStore) {
    with_pool(store).await;
    let p = ProjectId::generate();
    let mut body = gateway_body();
    body["name"] = json!("gw-one");
    body["enterprise_project_id"] = json!("eps-1");
    let plan1 = plan(body);
    let g1 = store.create_gateway(&p, plan1.clone()).await.unwrap();

    let mut expected = plan1.gateway.clone();
    expected.eip1 = Some(Eip::bound(
        &eip_id("127.0.0.2"),
        "127.0.0.2",
        &plan1.eips[0],
    ));
    expected.created_at.clone_from(&g1.created_at);
    expected.updated_at.clone_from(&g1.updated_at);
    assert_eq!(g1, expected);
    assert_eq!(g1.created_at, g1.updated_at);
    assert!(domain::time::parse_marker(&g1.created_at).is_some());
    assert_eq!(
        (g1.used_connection_number, g1.used_connection_group),
        (0, 0)
    );

    assert_eq!(store.get_gateway(&p, &g1.id).await, Ok(g1.clone()));
    let g2 = gateway(store, &p, gateway_body()).await;
    assert_eq!(
        store.list_gateways(&p, None, &[]).await,
        Ok(vec![g1.clone(), g2.clone()])
    );
    assert_eq!(
        store.list_gateways(&p, Some(&g2.id), &[]).await,
        Ok(vec![g2.clone()])
    );
    assert_eq!(
        store.list_gateways(&p, None, &["eps-1".into()]).await,
        Ok(vec![g1.clone()])
    );
    assert_eq!(
        store
            .list_gateways(&p, None, &["0".into(), "eps-1".into()])
            .await,
        Ok(vec![g1.clone(), g2.clone()])
    );
    assert_eq!(
        store.list_gateways(&p, None, &["eps-9".into()]).await,
        Ok(vec![])
    );
    assert_eq!(store.list_gateways(&p, Some(&id()), &[]).await, Ok(vec![]));

    let at = now();
    let req: UpdateVgw = serde_json::from_value(json!({
        "name": "gw-renamed",
        "local_subnets": ["192.168.1.0/24", "192.168.2.0/24"],
    }))
    .unwrap();
    let updated = store.update_gateway(&p, &g1.id, &req).await.unwrap();
    let mut expected = g1.clone();
    expected.name = "gw-renamed".into();
    expected.local_subnets = vec!["192.168.1.0/24".into(), "192.168.2.0/24".into()];
    expected.updated_at = at;
    assert_eq!(updated, expected);
    assert_eq!(store.get_gateway(&p, &g1.id).await, Ok(expected));

    let bad: UpdateVgw = serde_json::from_value(json!({"name": "bad name"})).unwrap();
    assert!(matches!(
        store.update_gateway(&p, &g1.id, &bad).await,
        Err(DomainError::Invalid(_))
    ));
    assert_eq!(
        store.update_gateway(&p, &id(), &req).await,
        Err(DomainError::NotFound)
    );

    store.delete_gateway(&p, &g1.id).await.unwrap();
    assert_eq!(
        store.get_gateway(&p, &g1.id).await,
        Err(DomainError::NotFound)
    );
    assert_eq!(
        store.delete_gateway(&p, &g1.id).await,
        Err(DomainError::NotFound)
    );
    assert_eq!(store.list_gateways(&p, None, &[]).await, Ok(vec![g2]));
}

async fn gateway_update_rebinds_eip_unless_a_connection_uses_it(store: &SqlStore) {
    let s = setup(store).await;
    let (p, gw) = (&s.p, &s.gw);
    let old = eip1_id(gw);
    let new = eip_id("127.0.0.6");

    let req: UpdateVgw = serde_json::from_value(json!({"eip_id_1": new})).unwrap();
    assert_eq!(
        store.update_gateway(p, &gw.id, &req).await,
        Err(invalid(format!(
            "vpn_gateway.eip_id_1: EIP {old} is used by vpn connection {}",
            s.conn.id
        )))
    );
    store.delete_connection(p, &s.conn.id).await.unwrap();

    let updated = store.update_gateway(p, &gw.id, &req).await.unwrap();
    assert_eq!(eip1_id(&updated), new);
    assert_eq!(eip1_address(&updated), "127.0.0.6");
    assert_eq!(store.get_gateway(p, &gw.id).await, Ok(updated.clone()));
    let pool = pool_rows(store).await.unwrap();
    assert_eq!(pool[0], (old, "127.0.0.2".into(), None, None));
    assert_eq!(
        pool[4],
        (
            new.clone(),
            "127.0.0.6".into(),
            Some(p.to_string()),
            Some(gw.id.to_string())
        )
    );
    // Asking for the EIP it already has changes nothing.
    let same = store.update_gateway(p, &gw.id, &req).await.unwrap();
    assert_eq!(same.eip1, updated.eip1);
}

async fn cgw_crud(store: &SqlStore) {
    let p = ProjectId::generate();
    let record = cgw_record(json!({"name": "peer-a", "id_value": "127.0.0.10", "bgp_asn": 65000}));
    let c1 = store.create_cgw(&p, &record).await.unwrap();
    let mut expected = record.clone();
    expected.created_at.clone_from(&c1.created_at);
    expected.updated_at.clone_from(&c1.created_at);
    assert_eq!(c1, expected);
    assert!(domain::time::parse_marker(&c1.created_at).is_some());
    assert_eq!(store.get_cgw(&p, &c1.id).await, Ok(c1.clone()));

    let c2 = cgw(store, &p).await;
    let all = store.list_cgws(&p, None, Page::default()).await.unwrap();
    assert_eq!((all.items, all.total), (vec![c1.clone(), c2.clone()], 2));
    let one = store
        .list_cgws(&p, Some(&c2.id), Page::default())
        .await
        .unwrap();
    assert_eq!((one.items, one.total), (vec![c2.clone()], 1));

    let at = now();
    let req: UpdateCgw = serde_json::from_value(json!({"name": "peer-renamed"})).unwrap();
    let updated = store.update_cgw(&p, &c1.id, &req).await.unwrap();
    let mut expected = c1.clone();
    expected.name = "peer-renamed".into();
    expected.updated_at = at;
    assert_eq!(updated, expected);
    assert_eq!(store.get_cgw(&p, &c1.id).await, Ok(expected));
    assert_eq!(
        store.update_cgw(&p, &id(), &req).await,
        Err(DomainError::NotFound)
    );

    store.delete_cgw(&p, &c1.id).await.unwrap();
    assert_eq!(store.get_cgw(&p, &c1.id).await, Err(DomainError::NotFound));
    assert_eq!(
        store.delete_cgw(&p, &c1.id).await,
        Err(DomainError::NotFound)
    );
    let rest = store.list_cgws(&p, None, Page::default()).await.unwrap();
    assert_eq!((rest.items, rest.total), (vec![c2], 1));
}

async fn connection_crud(store: &SqlStore) {
    let s = setup(store).await;
    let (p, conn) = (&s.p, &s.conn);
    assert_eq!(conn.vgw_id, s.gw.id);
    assert_eq!(conn.vgw_ip, eip1_id(&s.gw));
    assert_eq!(conn.cgw_id, s.cgw.id);
    assert_eq!(conn.peer_subnets, vec!["10.10.0.0/16".to_string()]);
    assert_eq!(
        (conn.status.as_str(), conn.style.as_str()),
        ("ACTIVE", "STATIC")
    );
    assert_eq!(conn.enterprise_project_id, "0");
    assert!(conn.tunnel_local_address.is_some());
    assert_eq!(conn.connection_monitor_id, None);
    assert_eq!(conn.created_at, conn.updated_at);
    assert!(domain::time::parse_marker(&conn.created_at).is_some());

    assert_eq!(store.get_connection(p, &conn.id).await, Ok(conn.clone()));
    let listed = store
        .list_connections(p, &ConnectionFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!((listed.items, listed.total), (vec![conn.clone()], 1));
    let gw = store.get_gateway(p, &s.gw.id).await.unwrap();
    assert_eq!(
        (gw.used_connection_number, gw.used_connection_group),
        (1, 1)
    );

    // A second connection on the same gateway gets another tunnel /30.
    let conn2 = connection(store, p, &s.gw, &s.cgw).await;
    assert_ne!(conn2.tunnel_local_address, conn.tunnel_local_address);
    let gw = store.get_gateway(p, &s.gw.id).await.unwrap();
    assert_eq!(
        (gw.used_connection_number, gw.used_connection_group),
        (2, 1)
    );

    let other_cgw = cgw(store, p).await;
    let at = now();
    let req: UpdateConnection = serde_json::from_value(json!({
        "name": "conn-renamed",
        "cgw_id": other_cgw.id,
        "peer_subnets": ["10.20.0.0/16"],
        "tunnel_local_address": "169.254.70.1/30",
        "tunnel_peer_address": "169.254.70.2/30",
        "psk": "Efgh5678!y",
    }))
    .unwrap();
    let updated = store.update_connection(p, &conn.id, &req).await.unwrap();
    let mut expected = conn.clone();
    expected.name = "conn-renamed".into();
    expected.cgw_id.clone_from(&other_cgw.id);
    expected.peer_subnets = vec!["10.20.0.0/16".into()];
    expected.tunnel_local_address = Some("169.254.70.1/30".into());
    expected.tunnel_peer_address = Some("169.254.70.2/30".into());
    expected.updated_at = at;
    assert_eq!(updated, expected);
    assert_eq!(store.get_connection(p, &conn.id).await, Ok(expected));

    // The tunnel /30 the first connection now uses is taken on this gateway.
    let clash: UpdateConnection = serde_json::from_value(json!({
        "tunnel_local_address": "169.254.70.2/30",
        "tunnel_peer_address": "169.254.70.1/30",
    }))
    .unwrap();
    assert_eq!(
        store.update_connection(p, &conn2.id, &clash).await,
        Err(invalid(
            "vpn_connection.tunnel_local_address 169.254.70.2/30 is already used on this gateway"
        ))
    );
    let unknown_cgw: UpdateConnection = serde_json::from_value(json!({"cgw_id": uuid()})).unwrap();
    assert_eq!(
        store.update_connection(p, &conn.id, &unknown_cgw).await,
        Err(DomainError::NotFound)
    );
    assert_eq!(
        store.update_connection(p, &id(), &req).await,
        Err(DomainError::NotFound)
    );

    store.delete_connection(p, &conn.id).await.unwrap();
    assert_eq!(
        store.get_connection(p, &conn.id).await,
        Err(DomainError::NotFound)
    );
    assert_eq!(
        store.delete_connection(p, &conn.id).await,
        Err(DomainError::NotFound)
    );
    let listed = store
        .list_connections(p, &ConnectionFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!((listed.items, listed.total), (vec![conn2], 1));
    let gw = store.get_gateway(p, &s.gw.id).await.unwrap();
    assert_eq!(gw.used_connection_number, 1);
}

async fn connection_create_checks_its_references(store: &SqlStore) {
    let s = setup(store).await;
    let (p, gw, cgw) = (&s.p, &s.gw, &s.cgw);
    let ip = eip1_id(gw);
    assert_eq!(
        try_connection(store, p, &uuid(), &ip, &cgw.id).await,
        Err(DomainError::NotFound),
        "unknown gateway"
    );
    assert_eq!(
        try_connection(store, p, &gw.id, &ip, &uuid()).await,
        Err(DomainError::NotFound),
        "unknown customer gateway"
    );
    let stranger = eip_id("127.0.0.9");
    assert_eq!(
        try_connection(store, p, &gw.id, &stranger, &cgw.id).await,
        Err(invalid(format!(
            "vpn_connection.vgw_ip {stranger} is not an EIP id (or private address) of gateway {}",
            gw.id
        )))
    );
    assert_eq!(
        try_connection(store, p, &"not-a-uuid", &ip, &cgw.id).await,
        Err(invalid(
            r#"vpn_connection.vgw_id is not a valid UUID: "not-a-uuid""#
        ))
    );
    let listed = store
        .list_connections(p, &ConnectionFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(listed.total, 1, "failed creates leave nothing behind");
}

async fn gateway_and_cgw_in_use_cannot_be_deleted(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    assert_eq!(
        store.delete_gateway(p, &s.gw.id).await,
        Err(invalid(format!(
            "vpn gateway {} is used by vpn connection {}",
            s.gw.id, s.conn.id
        )))
    );
    assert_eq!(
        store.delete_cgw(p, &s.cgw.id).await,
        Err(invalid(format!(
            "customer gateway {} is used by vpn connection {}",
            s.cgw.id, s.conn.id
        )))
    );
    assert!(store.get_gateway(p, &s.gw.id).await.is_ok());
    assert!(store.get_cgw(p, &s.cgw.id).await.is_ok());
    assert!(pool_rows(store).await.unwrap()[0].3.is_some());

    store.delete_connection(p, &s.conn.id).await.unwrap();
    store.delete_gateway(p, &s.gw.id).await.unwrap();
    store.delete_cgw(p, &s.cgw.id).await.unwrap();
}

// ---------- connection monitors ----------

async fn monitor_crud_and_connection_monitor_id(store: &SqlStore) {
    let s = setup(store).await;
    let (p, conn) = (&s.p, &s.conn);
    let id = MonitorId::random();
    let m = store.create_monitor(p, &conn.id, id).await.unwrap();
    assert_eq!(
        m,
        ConnectionMonitor {
            id,
            status: status::PENDING_CREATE.into(),
            vpn_connection_id: conn.id,
            monitor_type: "gateway".into(),
            source_ip: "127.0.0.2".into(),
            destination_ip: "127.0.0.10".into(),
            proto_type: "icmp".into(),
        }
    );
    assert_eq!(store.get_monitor(p, &id).await, Ok(m.clone()));
    assert_eq!(store.list_monitors(p, None).await, Ok(vec![m.clone()]));

    let with_monitor = VpnConnection {
        connection_monitor_id: Some(id),
        ..conn.clone()
    };
    assert_eq!(
        store.get_connection(p, &conn.id).await,
        Ok(with_monitor.clone())
    );
    let other = connection(store, p, &s.gw, &s.cgw).await;
    let listed = store
        .list_connections(p, &ConnectionFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![with_monitor, other.clone()]);
    assert_eq!(listed.items[1].connection_monitor_id, None);

    // An update answers with the monitor id and does not store it.
    let req: UpdateConnection = serde_json::from_value(json!({"name": "renamed"})).unwrap();
    let updated = store.update_connection(p, &conn.id, &req).await.unwrap();
    assert_eq!(updated.connection_monitor_id, Some(id));

    assert_eq!(
        store
            .create_monitor(p, &ConnectionId::random(), MonitorId::random())
            .await,
        Err(DomainError::NotFound)
    );

    store.delete_monitor(p, &id).await.unwrap();
    assert_eq!(store.get_monitor(p, &id).await, Err(DomainError::NotFound));
    assert_eq!(
        store.delete_monitor(p, &id).await,
        Err(DomainError::NotFound)
    );
    assert_eq!(store.list_monitors(p, None).await, Ok(vec![]));
    assert_eq!(
        store
            .get_connection(p, &conn.id)
            .await
            .unwrap()
            .connection_monitor_id,
        None
    );
    // The connection can be monitored again.
    let again = monitor(store, p, conn).await;
    assert_eq!(
        store
            .get_connection(p, &conn.id)
            .await
            .unwrap()
            .connection_monitor_id,
        Some(again.id)
    );
}

async fn second_monitor_is_monitor_exists(store: &SqlStore) {
    let s = setup(store).await;
    let first = monitor(store, &s.p, &s.conn).await;
    assert_eq!(
        store.create_monitor(&s.p, &s.conn.id, id()).await,
        Err(DomainError::MonitorExists(s.conn.id))
    );
    assert_eq!(store.list_monitors(&s.p, None).await, Ok(vec![first]));
}

async fn monitor_of_fqdn_cgw_is_invalid(store: &SqlStore) {
    with_pool(store).await;
    let p = ProjectId::generate();
    let gw = gateway(store, &p, gateway_body()).await;
    let fqdn = store
        .create_cgw(
            &p,
            &cgw_record(json!({"id_type": "fqdn", "id_value": "peer.example.com"})),
        )
        .await
        .unwrap();
    let conn = connection(store, &p, &gw, &fqdn).await;
    assert_eq!(
        store.create_monitor(&p, &conn.id, id()).await,
        Err(invalid(format!(
            "customer gateway {} is identified by fqdn \"peer.example.com\", not by an IP address, so it cannot be probed",
            fqdn.id
        )))
    );
    assert_eq!(store.list_monitors(&p, None).await, Ok(vec![]));
}

async fn connection_cgw_cannot_change_while_monitored(store: &SqlStore) {
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let other = cgw(store, &s.p).await;
    let req: UpdateConnection = serde_json::from_value(json!({"cgw_id": other.id})).unwrap();
    assert_eq!(
        store.update_connection(&s.p, &s.conn.id, &req).await,
        Err(invalid(format!(
            "vpn_connection.cgw_id cannot change while connection monitor {} exists; delete it first",
            m.id
        )))
    );
    let same: UpdateConnection = serde_json::from_value(json!({"cgw_id": s.cgw.id})).unwrap();
    assert!(
        store
            .update_connection(&s.p, &s.conn.id, &same)
            .await
            .is_ok()
    );
}

async fn deleting_a_connection_deletes_its_monitor_and_points(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let kept_conn = connection(store, p, &s.gw, &s.cgw).await;
    let kept = monitor(store, p, &kept_conn).await;
    store
        .insert_points(&[point(&m, p, 60_000, 10), point(&kept, p, 60_000, 9)])
        .await
        .unwrap();

    store.delete_connection(p, &s.conn.id).await.unwrap();
    assert_eq!(
        store.get_monitor(p, &m.id).await,
        Err(DomainError::NotFound)
    );
    assert_eq!(store.list_monitors(p, None).await, Ok(vec![kept.clone()]));
    assert_eq!(store.list_monitors(p, Some(&s.conn.id)).await, Ok(vec![]));
    let probing = store.monitors_for_probing().await.unwrap();
    assert_eq!(ids(&probing, |m| &m.id), vec![kept.id]);
    assert_eq!(store.list_points(p, &m.id, 0, i64::MAX).await, Ok(vec![]));
    assert_eq!(
        store.list_points(p, &kept.id, 0, i64::MAX).await,
        Ok(vec![point(&kept, p, 60_000, 9)])
    );
    assert_eq!(
        store.get_link_state(p, &m.id).await,
        Err(DomainError::NotFound)
    );
    // The gateway and customer gateway are free once no connection uses them.
    store.delete_connection(p, &kept_conn.id).await.unwrap();
    assert_eq!(store.list_monitors(p, None).await, Ok(vec![]));
    store.delete_gateway(p, &s.gw.id).await.unwrap();
    store.delete_cgw(p, &s.cgw.id).await.unwrap();
}

// ---------- tenant isolation ----------

async fn tenant_isolation(store: &SqlStore) {
    let s = setup(store).await;
    let a = &s.p;
    let m = monitor(store, a, &s.conn).await;
    store.insert_points(&[point(&m, a, 0, 10)]).await.unwrap();
    let b = &ProjectId::generate();

    // Reads.
    assert_eq!(store.get_gateway(b, &s.gw.id).await, nf());
    assert_eq!(store.list_gateways(b, None, &[]).await, Ok(vec![]));
    assert_eq!(
        store.list_gateways(b, Some(&s.gw.id), &[]).await,
        Ok(vec![])
    );
    assert_eq!(store.get_cgw(b, &s.cgw.id).await, nf());
    for id in [None, Some(&s.cgw.id)] {
        let l = store.list_cgws(b, id, Page::default()).await.unwrap();
        assert_eq!((l.items, l.total, l.next_marker), (vec![], 0, None));
    }
    assert_eq!(store.get_connection(b, &s.conn.id).await, nf());
    for f in [
        ConnectionFilter::default(),
        ConnectionFilter {
            vpn_id: Some(s.conn.id),
            ..Default::default()
        },
        ConnectionFilter {
            vgw_id: Some(s.gw.id),
            ..Default::default()
        },
    ] {
        let l = store
            .list_connections(b, &f, Page::default())
            .await
            .unwrap();
        assert_eq!((l.items, l.total, l.next_marker), (vec![], 0, None));
    }
    assert_eq!(store.get_monitor(b, &m.id).await, nf());
    assert_eq!(store.list_monitors(b, None).await, Ok(vec![]));
    assert_eq!(store.list_monitors(b, Some(&s.conn.id)).await, Ok(vec![]));
    assert_eq!(store.get_link_state(b, &m.id).await, nf());
    assert_eq!(store.list_points(b, &m.id, 0, i64::MAX).await, Ok(vec![]));

    // Writes.
    let vgw_req: UpdateVgw = serde_json::from_value(json!({"name": "stolen"})).unwrap();
    assert_eq!(store.update_gateway(b, &s.gw.id, &vgw_req).await, nf());
    let cgw_req: UpdateCgw = serde_json::from_value(json!({"name": "stolen"})).unwrap();
    assert_eq!(store.update_cgw(b, &s.cgw.id, &cgw_req).await, nf());
    let conn_req: UpdateConnection = serde_json::from_value(json!({"name": "stolen"})).unwrap();
    assert_eq!(
        store.update_connection(b, &s.conn.id, &conn_req).await,
        nf()
    );
    assert_eq!(
        try_connection(store, b, &s.gw.id, &eip1_id(&s.gw), &s.cgw.id).await,
        nf(),
        "another project's gateway cannot carry a connection"
    );
    assert_eq!(store.create_monitor(b, &s.conn.id, id()).await, nf());
    assert_eq!(store.delete_monitor(b, &m.id).await, nf());
    assert_eq!(store.delete_connection(b, &s.conn.id).await, nf());
    assert_eq!(store.delete_cgw(b, &s.cgw.id).await, nf());
    assert_eq!(store.delete_gateway(b, &s.gw.id).await, nf());

    // Project A's resources are untouched.
    let gw = store.get_gateway(a, &s.gw.id).await.unwrap();
    assert_eq!(
        (gw.name.as_str(), gw.used_connection_number),
        (s.gw.name.as_str(), 1)
    );
    assert_eq!(store.get_cgw(a, &s.cgw.id).await, Ok(s.cgw.clone()));
    assert_eq!(
        store.get_connection(a, &s.conn.id).await,
        Ok(VpnConnection {
            connection_monitor_id: Some(m.id),
            ..s.conn.clone()
        })
    );
    assert_eq!(store.get_monitor(a, &m.id).await, Ok(m.clone()));
    assert_eq!(
        store.list_points(a, &m.id, 0, i64::MAX).await,
        Ok(vec![point(&m, a, 0, 10)])
    );
}

// ---------- pagination and filters ----------

async fn cgw_pagination(store: &SqlStore) {
    let p = ProjectId::generate();
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(cgw(store, &p).await);
    }
    // Another project's customer gateways never show up.
    cgw(store, &ProjectId::generate()).await;

    let p = &p;
    let (items, sizes) = walk_pages(
        move |page| store.list_cgws(p, None, page),
        2,
        5,
        |c: &CustomerGateway| &c.created_at,
    )
    .await;
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(ids(&items, |c| &c.id), ids(&made, |c| &c.id));
    assert_eq!(items, made);
}

async fn connection_pagination(store: &SqlStore) {
    let s = setup(store).await;
    let mut made = vec![s.conn.clone()];
    for _ in 0..4 {
        made.push(connection(store, &s.p, &s.gw, &s.cgw).await);
    }
    let p = &s.p;
    let all = ConnectionFilter::default();
    let (items, sizes) = walk_pages(
        |page| store.list_connections(p, &all, page),
        2,
        5,
        |c: &VpnConnection| &c.created_at,
    )
    .await;
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(ids(&items, |c| &c.id), ids(&made, |c| &c.id));
    assert_eq!(items, made);
    let distinct: HashSet<_> = items.iter().map(|c| c.id).collect();
    assert_eq!(distinct.len(), 5);

    // A filter applies to the total and the pages alike.
    let by_gw = ConnectionFilter {
        vgw_id: Some(s.gw.id),
        ..Default::default()
    };
    let (items, sizes) = walk_pages(
        |page| store.list_connections(p, &by_gw, page),
        4,
        5,
        |c: &VpnConnection| &c.created_at,
    )
    .await;
    assert_eq!((items.len(), sizes), (5, vec![4, 1]));
}

async fn connection_filters(store: &SqlStore) {
    with_pool(store).await;
    let p = &ProjectId::generate();
    let mut body = gateway_body();
    body["eip2"] = params_eip();
    let gw1 = gateway(store, p, body).await;
    let mut body = gateway_body();
    body["enterprise_project_id"] = json!("eps-2");
    let gw2 = gateway(store, p, body).await;
    let cgw = cgw(store, p).await;
    let eip2_of_gw1 = gw1.eip2.as_ref().expect("eip2").id.clone();
    let c1 = connection(store, p, &gw1, &cgw).await;
    let c2 = try_connection(store, p, &gw1.id, &eip2_of_gw1, &cgw.id)
        .await
        .unwrap();
    let c3 = connection(store, p, &gw2, &cgw).await;
    assert_eq!(c3.enterprise_project_id, "eps-2");

    let list = |f: ConnectionFilter| async move {
        let l = store
            .list_connections(p, &f, Page::default())
            .await
            .unwrap();
        assert_eq!(l.total, l.items.len() as i64);
        ids(&l.items, |c| &c.id)
    };
    let f = ConnectionFilter::default;
    let idv = |cs: &[&VpnConnection]| cs.iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(list(f()).await, idv(&[&c1, &c2, &c3]));
    assert_eq!(
        list(ConnectionFilter {
            vgw_id: Some(gw1.id),
            ..f()
        })
        .await,
        idv(&[&c1, &c2])
    );
    assert_eq!(
        list(ConnectionFilter {
            vgw_ip: Some(eip2_of_gw1.clone()),
            ..f()
        })
        .await,
        idv(&[&c2])
    );
    assert_eq!(
        list(ConnectionFilter {
            eip_id: Some(eip1_id(&gw2)),
            ..f()
        })
        .await,
        idv(&[&c3])
    );
    assert_eq!(
        list(ConnectionFilter {
            vpn_id: Some(c3.id),
            ..f()
        })
        .await,
        idv(&[&c3])
    );
    assert_eq!(
        list(ConnectionFilter {
            vpn_id: Some(c3.id),
            vgw_id: Some(gw1.id),
            ..f()
        })
        .await,
        idv(&[]),
        "filters combine"
    );
    assert_eq!(
        list(ConnectionFilter {
            eps: vec!["eps-2".into()],
            ..f()
        })
        .await,
        idv(&[&c3])
    );
    assert_eq!(
        list(ConnectionFilter {
            eps: vec!["0".into(), "eps-2".into()],
            ..f()
        })
        .await,
        idv(&[&c1, &c2, &c3])
    );
    assert_eq!(
        list(ConnectionFilter {
            vgw_id: Some(id()),
            ..f()
        })
        .await,
        idv(&[])
    );
}

async fn monitor_list_filter(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let c2 = connection(store, p, &s.gw, &s.cgw).await;
    let c3 = connection(store, p, &s.gw, &s.cgw).await;
    let m1 = monitor(store, p, &s.conn).await;
    let m2 = monitor(store, p, &c2).await;
    assert_eq!(
        store.list_monitors(p, None).await,
        Ok(vec![m1.clone(), m2.clone()])
    );
    assert_eq!(store.list_monitors(p, Some(&s.conn.id)).await, Ok(vec![m1]));
    assert_eq!(store.list_monitors(p, Some(&c2.id)).await, Ok(vec![m2]));
    assert_eq!(store.list_monitors(p, Some(&c3.id)).await, Ok(vec![]));
    assert_eq!(store.list_monitors(p, Some(&id())).await, Ok(vec![]));
}

// ---------- the probe engine's seam ----------

async fn monitors_for_probing_and_status(store: &SqlStore) {
    let s = setup(store).await;
    let (a, b) = (&s.p, &ProjectId::generate());
    let ma = monitor(store, a, &s.conn).await;
    // Creation order across projects is by time: make it tell them apart.
    harness::advance_ms(1);
    let gb = gateway(store, b, gateway_body()).await;
    let cb = cgw(store, b).await;
    let conn_b = connection(store, b, &gb, &cb).await;
    let mb = monitor(store, b, &conn_b).await;

    let probe = |m: &ConnectionMonitor, p: &ProjectId, source: &str, status: &str| ProbeMonitor {
        id: m.id,
        project_id: p.clone(),
        vpn_connection_id: m.vpn_connection_id,
        source_ip: source.into(),
        destination_ip: "127.0.0.10".into(),
        status: status.into(),
    };
    assert_eq!(
        store.monitors_for_probing().await,
        Ok(vec![
            probe(&ma, a, "127.0.0.2", status::PENDING_CREATE),
            probe(&mb, b, "127.0.0.3", status::PENDING_CREATE),
        ])
    );

    // The same monitors a page at a time, in id order.
    let mut all = store.monitors_for_probing().await.unwrap();
    all.sort_by_key(|x| x.id);
    let first = store.monitors_for_probing_page(None, 1).await.unwrap();
    assert_eq!(first, all[..1].to_vec());
    let rest = store
        .monitors_for_probing_page(Some(&first[0].id), 10)
        .await
        .unwrap();
    assert_eq!(rest, all[1..].to_vec());
    assert_eq!(
        store.monitors_for_probing_page(Some(&all[1].id), 10).await,
        Ok(vec![])
    );

    assert_eq!(
        store.set_monitor_status(&ma.id, status::ACTIVE).await,
        Ok(true)
    );
    assert_eq!(
        store.set_monitor_status(&id(), status::ACTIVE).await,
        Ok(false)
    );
    let active = ConnectionMonitor {
        status: status::ACTIVE.into(),
        ..ma.clone()
    };
    assert_eq!(store.get_monitor(a, &ma.id).await, Ok(active.clone()));
    assert_eq!(store.list_monitors(a, None).await, Ok(vec![active]));
    assert_eq!(
        store.monitors_for_probing().await,
        Ok(vec![
            probe(&ma, a, "127.0.0.2", status::ACTIVE),
            probe(&mb, b, "127.0.0.3", status::PENDING_CREATE),
        ])
    );
}

async fn link_state_round_trip(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    assert_eq!(
        store.get_link_state(p, &m.id).await,
        Ok(LinkState::default())
    );

    let up = LinkState {
        up: Some(true),
        changed_us: Some(1_700_000_000_123_456),
        note: None,
    };
    assert_eq!(store.set_link_state(&m.id, &up).await, Ok(true));
    assert_eq!(store.get_link_state(p, &m.id).await, Ok(up));

    let down = LinkState {
        up: Some(false),
        changed_us: Some(1_700_000_060_000_000),
        note: Some("source address 127.0.0.2 is not local".into()),
    };
    assert_eq!(store.set_link_state(&m.id, &down).await, Ok(true));
    assert_eq!(store.get_link_state(p, &m.id).await, Ok(down));

    assert_eq!(
        store.set_link_state(&m.id, &LinkState::default()).await,
        Ok(true)
    );
    assert_eq!(
        store.get_link_state(p, &m.id).await,
        Ok(LinkState::default())
    );
    assert_eq!(
        store.set_link_state(&id(), &LinkState::default()).await,
        Ok(false)
    );
    assert_eq!(
        store.get_link_state(p, &id()).await,
        Err(DomainError::NotFound)
    );
    // The status is not part of the link state.
    assert_eq!(store.get_monitor(p, &m.id).await, Ok(m));
}

async fn monitor_updates_apply_in_one_batch(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let other_conn = connection(store, p, &s.gw, &s.cgw).await;
    let other = monitor(store, p, &other_conn).await;
    let down = LinkState {
        up: Some(false),
        changed_us: Some(1_700_000_060_000_000),
        note: None,
    };
    let note = LinkState {
        up: None,
        changed_us: None,
        note: Some("destination 127.0.0.10 is outside the probe allowlist".into()),
    };
    let updates = [
        MonitorUpdate::Status {
            id: m.id,
            status: status::ACTIVE.into(),
        },
        MonitorUpdate::Link {
            id: m.id,
            state: down.clone(),
        },
        MonitorUpdate::Link {
            id: other.id,
            state: note.clone(),
        },
        // A monitor deleted meanwhile is skipped, not an error.
        MonitorUpdate::Status {
            id: id(),
            status: status::ACTIVE.into(),
        },
    ];
    assert_eq!(store.update_monitors(&updates).await, Ok(()));
    assert_eq!(store.update_monitors(&[]).await, Ok(()));
    assert_eq!(
        store.get_monitor(p, &m.id).await.map(|x| x.status),
        Ok(status::ACTIVE.to_string())
    );
    assert_eq!(
        store.get_monitor(p, &other.id).await.map(|x| x.status),
        Ok(other.status.clone())
    );
    assert_eq!(store.get_link_state(p, &m.id).await, Ok(down));
    assert_eq!(store.get_link_state(p, &other.id).await, Ok(note));
    // Applying the same status again changes nothing and is no error.
    assert_eq!(store.update_monitors(&updates[..1]).await, Ok(()));
    assert_eq!(
        store.get_monitor(p, &m.id).await.map(|x| x.status),
        Ok(status::ACTIVE.to_string())
    );
}

async fn points_insert_list_prune(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let other_conn = connection(store, p, &s.gw, &s.cgw).await;
    let other = monitor(store, p, &other_conn).await;
    let t0 = 1_700_000_000_000;
    let pts = vec![
        point(&m, p, t0, 10),
        point(&m, p, t0 + 60_000, 7),
        point(&m, p, t0 + 120_000, 0),
    ];
    assert_eq!(store.insert_points(&[]).await, Ok(()));
    // Out of order, mixed with another monitor's points.
    store
        .insert_points(&[
            pts[2].clone(),
            point(&other, p, t0, 10),
            pts[0].clone(),
            pts[1].clone(),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.list_points(p, &m.id, t0, t0 + 180_000).await,
        Ok(pts.clone())
    );
    assert_eq!(
        store.list_points(p, &m.id, t0 + 60_000, t0 + 120_000).await,
        Ok(vec![pts[1].clone()]),
        "from is inclusive, to exclusive"
    );
    assert_eq!(
        store
            .list_points(p, &m.id, t0 + 180_000, t0 + 240_000)
            .await,
        Ok(vec![])
    );

    // A point for a window already stored is ignored, the rest of the batch kept.
    let late = point(&m, p, t0 + 180_000, 10);
    store
        .insert_points(&[point(&m, p, t0, 3), late.clone()])
        .await
        .unwrap();
    let mut expected = pts.clone();
    expected.push(late.clone());
    assert_eq!(
        store.list_points(p, &m.id, t0, t0 + 240_000).await,
        Ok(expected)
    );

    assert_eq!(
        store.prune_points(t0 + 60_000).await,
        Ok(2),
        "one per monitor"
    );
    assert_eq!(store.prune_points(t0 + 60_000).await, Ok(0));
    assert_eq!(
        store.list_points(p, &m.id, 0, i64::MAX).await,
        Ok(vec![pts[1].clone(), pts[2].clone(), late])
    );
    assert_eq!(
        store.list_points(p, &other.id, 0, i64::MAX).await,
        Ok(vec![])
    );
}

/// Batches larger than one multi-row INSERT are split and all stored.
async fn points_insert_in_chunks(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let pts: Vec<_> = (0..150).map(|i| point(&m, p, i * 60_000, i % 11)).collect();
    store.insert_points(&pts).await.unwrap();
    assert_eq!(store.list_points(p, &m.id, 0, i64::MAX).await, Ok(pts));
    assert_eq!(store.prune_points(i64::MAX).await, Ok(150));
}

/// Raw points are keyed by 10 s time buckets: windows on and next to bucket
/// edges, ranges that start and end inside buckets, ranges wider than
/// anything stored, and deleting one monitor among others across many
/// buckets all answer exactly what a filter over the inserted points does.
async fn points_ranges_across_time_buckets(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let other_conn = connection(store, p, &s.gw, &s.cgw).await;
    let other = monitor(store, p, &other_conn).await;
    let t0: i64 = 1_700_000_000_000; // a multiple of 10 s
    let offsets: [i64; 10] = [
        0, 1, 9_999, 10_000, 10_001, 19_999, 25_000, 60_000, 3_600_000, 3_609_999,
    ];
    let mine: Vec<_> = offsets
        .iter()
        .map(|o| point(&m, p, t0 + o, (o % 7) + 1))
        .collect();
    let theirs: Vec<_> = offsets
        .iter()
        .map(|o| point(&other, p, t0 + o, 5))
        .collect();
    let mut all = mine.clone();
    all.extend(theirs.iter().cloned());
    store.insert_points(&all).await.unwrap();
    let ranges = [
        (0, i64::MAX),
        (i64::MIN, i64::MAX),
        (t0, t0 + 1),
        (t0 + 1, t0 + 10_000),
        (t0 + 9_999, t0 + 10_001),
        (t0 + 10_000, t0 + 10_000),
        (t0 + 5_000, t0 + 3_609_999),
        (t0 + 26_000, t0 + 59_999),
        (t0 + 3_609_999, i64::MAX),
        (t0 + 3_610_000, i64::MAX),
        (0, t0),
    ];
    for (from, to) in ranges {
        let expected: Vec<_> = mine
            .iter()
            .filter(|w| (from..to).contains(&w.window_start_ms))
            .cloned()
            .collect();
        assert_eq!(
            store.list_points(p, &m.id, from, to).await,
            Ok(expected),
            "range {from}..{to}"
        );
    }
    // Rollups are keyed by time the same way: each bucket of `mine` once,
    // whatever range around it is asked for.
    assert!(store.roll_up(300, t0 + 4_000_000).await.unwrap() > 0);
    for (period, from, to) in [
        (60, i64::MIN, i64::MAX),
        (60, t0 + 1, t0 + 60_001),
        (60, t0 + 60_000, t0 + 3_600_000),
        (300, 0, i64::MAX),
        (300, t0 + 299_999, t0 + 3_600_001),
    ] {
        let p_ms = period * 1000;
        let mut expected: Vec<(i64, i64)> = Vec::new();
        for w in &mine {
            let b = w.window_start_ms.div_euclid(p_ms) * p_ms;
            if !(from..to).contains(&b) {
                continue;
            }
            match expected.last_mut() {
                Some((last, n)) if *last == b => *n += 1,
                _ => expected.push((b, 1)),
            }
        }
        let got: Vec<(i64, i64)> = store
            .list_rollups(p, &m.id, period, from, to)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.bucket_ms, r.windows))
            .collect();
        assert_eq!(got, expected, "period {period}, range {from}..{to}");
    }
    for period in [0, -60, i64::MAX] {
        assert_eq!(
            store.list_rollups(p, &m.id, period, 0, i64::MAX).await,
            Ok(vec![]),
            "no bucket has period {period}"
        );
    }
    let their_rollups = store
        .list_rollups(p, &other.id, 60, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(their_rollups.len(), 3, "minutes 0, 1 and 60");

    store.delete_monitor(p, &m.id).await.unwrap();
    assert_eq!(store.list_points(p, &m.id, 0, i64::MAX).await, Ok(vec![]));
    for period in [60, 300] {
        assert_eq!(
            store.list_rollups(p, &m.id, period, 0, i64::MAX).await,
            Ok(vec![])
        );
    }
    assert_eq!(
        store.list_points(p, &other.id, 0, i64::MAX).await,
        Ok(theirs.clone()),
        "another monitor's points in the same buckets stay"
    );
    assert_eq!(
        store.list_rollups(p, &other.id, 60, 0, i64::MAX).await,
        Ok(their_rollups)
    );
    // Retention cuts inside a bucket: the windows before the cut go.
    assert_eq!(store.prune_points(t0 + 10_001).await, Ok(4));
    assert_eq!(
        store.list_points(p, &other.id, 0, i64::MAX).await,
        Ok(theirs[4..].to_vec())
    );
}

/// Rollups: exact count/sum/sum-of-squares/min/max per bucket, each
/// complete bucket rolled up once, scoped by project, pruned by age and
/// deleted with their monitor.
async fn rollups_aggregate_each_window_once(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let q = &ProjectId::generate();
    let gq = gateway(store, q, gateway_body()).await;
    let cq = cgw(store, q).await;
    let connq = connection(store, q, &gq, &cq).await;
    let mq = monitor(store, q, &connq).await;

    // Nothing to roll up yet.
    assert_eq!(store.roll_up(60, 1_700_000_000_000).await, Ok(0));

    let b = 1_699_999_980_000; // a multiple of 60 s
    store
        .insert_points(&[
            point(&m, p, b, 10),
            point(&m, p, b + 20_000, 5),
            point(&m, p, b + 40_000, 0),
            point(&m, p, b + 60_000, 0),
            point(&m, p, b + 130_000, 10),
            point(&mq, q, b + 10_000, 10),
        ])
        .await
        .unwrap();

    // Buckets b and b+60 s are complete at b+150 s; b+120 s is not.
    assert_eq!(store.roll_up(60, b + 150_000).await, Ok(3));
    assert_eq!(store.roll_up(60, b + 150_000).await, Ok(0), "once only");
    let agg = |n, sum, sumsq, min: Option<f64>, max: Option<f64>| Agg {
        n,
        sum,
        sumsq,
        min,
        max,
    };
    let first = Rollup {
        monitor_id: m.id,
        period: 60,
        bucket_ms: b,
        windows: 3,
        sent: 30,
        received: 15,
        // rtt_avg 1.5 and rtt_max 3.75 in the two windows with replies.
        latency: agg(2, 3.0, 4.5, Some(1.5), Some(1.5)),
        max_latency: agg(2, 7.5, 28.125, Some(3.75), Some(3.75)),
        // loss 0, 50 and 100 %.
        loss: agg(3, 150.0, 12_500.0, Some(0.0), Some(100.0)),
    };
    let second = Rollup {
        bucket_ms: b + 60_000,
        windows: 1,
        sent: 10,
        received: 0,
        latency: Agg::default(),
        max_latency: Agg::default(),
        loss: agg(1, 100.0, 10_000.0, Some(100.0), Some(100.0)),
        ..first.clone()
    };
    assert_eq!(
        store.list_rollups(p, &m.id, 60, b, b + 600_000).await,
        Ok(vec![first.clone(), second.clone()])
    );
    assert_eq!(first.latency.average(), Some(1.5));
    assert_eq!(first.loss.average(), Some(50.0));
    assert_eq!(second.latency.average(), None);

    assert_eq!(store.roll_up(60, b + 180_000).await, Ok(1));
    let third = Rollup {
        bucket_ms: b + 120_000,
        windows: 1,
        sent: 10,
        received: 10,
        latency: agg(1, 1.5, 2.25, Some(1.5), Some(1.5)),
        max_latency: agg(1, 3.75, 14.0625, Some(3.75), Some(3.75)),
        loss: agg(1, 0.0, 0.0, Some(0.0), Some(0.0)),
        ..first.clone()
    };
    assert_eq!(
        store
            .list_rollups(p, &m.id, 60, b + 60_000, b + 180_000)
            .await,
        Ok(vec![second.clone(), third.clone()]),
        "from is inclusive, to exclusive"
    );
    assert_eq!(
        store.list_rollups(p, &m.id, 300, 0, i64::MAX).await,
        Ok(vec![])
    );
    assert_eq!(
        store.list_rollups(q, &m.id, 60, 0, i64::MAX).await,
        Ok(vec![]),
        "another project's monitor"
    );
    let theirs = store
        .list_rollups(q, &mq.id, 60, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(ids(&theirs, |r| &r.monitor_id), vec![mq.id]);

    assert_eq!(store.prune_rollups(60, b + 60_000).await, Ok(2));
    assert_eq!(
        store.list_rollups(p, &m.id, 60, 0, i64::MAX).await,
        Ok(vec![second, third])
    );
    store.delete_monitor(p, &m.id).await.unwrap();
    assert_eq!(
        store.list_rollups(p, &m.id, 60, 0, i64::MAX).await,
        Ok(vec![])
    );
    assert_eq!(store.prune_rollups(60, i64::MAX).await, Ok(0));
}

/// Periods above 60 s are rolled from the period below; what they hold must
/// equal the aggregate of the raw windows. Values are multiples of 1/8, so
/// every sum is exact in any order.
async fn longer_periods_roll_up_from_shorter_ones_exactly(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let t0: i64 = 1_416_667 * 1_200_000;
    let pts: Vec<WindowPoint> = (0..240i64)
        .map(|i| {
            let received = (i * 7) % 11;
            let up = received > 0;
            let avg = 1.0 + (i % 7) as f64 * 0.125;
            WindowPoint {
                monitor_id: m.id,
                project_id: p.clone(),
                window_start_ms: t0 + i * 10_000,
                sent: 10,
                received: received.min(10),
                loss_pct: 100.0 - 10.0 * received.min(10) as f64,
                rtt_min_ms: up.then_some(avg - 0.5),
                rtt_avg_ms: up.then_some(avg),
                rtt_max_ms: up.then_some(avg + 0.5 * (i % 3) as f64),
                jitter_ms: up.then_some(0.25),
            }
        })
        .collect();
    store.insert_points(&pts).await.unwrap();
    // Asking for the 1200 s level rolls the levels below it first.
    assert_eq!(store.roll_up(1200, t0 + 2_400_000).await, Ok(2));
    assert_eq!(
        store.roll_up(300, t0 + 2_400_000).await,
        Ok(0),
        "already rolled"
    );
    let agg_of = |vals: Vec<f64>| Agg {
        n: vals.len() as i64,
        sum: vals.iter().sum(),
        sumsq: vals.iter().map(|v| v * v).sum(),
        min: vals.iter().copied().reduce(f64::min),
        max: vals.iter().copied().reduce(f64::max),
    };
    for period in [60i64, 300, 1200] {
        let p_ms = period * 1000;
        let expected: Vec<Rollup> = (0..2_400_000 / p_ms)
            .map(|k| {
                let bucket_ms = t0 + k * p_ms;
                let inside: Vec<&WindowPoint> = pts
                    .iter()
                    .filter(|w| (bucket_ms..bucket_ms + p_ms).contains(&w.window_start_ms))
                    .collect();
                Rollup {
                    monitor_id: m.id,
                    period,
                    bucket_ms,
                    windows: inside.len() as i64,
                    sent: inside.iter().map(|w| w.sent).sum(),
                    received: inside.iter().map(|w| w.received).sum(),
                    latency: agg_of(inside.iter().filter_map(|w| w.rtt_avg_ms).collect()),
                    max_latency: agg_of(inside.iter().filter_map(|w| w.rtt_max_ms).collect()),
                    loss: agg_of(inside.iter().map(|w| w.loss_pct).collect()),
                }
            })
            .collect();
        assert_eq!(
            store.list_rollups(p, &m.id, period, 0, i64::MAX).await,
            Ok(expected),
            "period {period}"
        );
    }
}

// ---------- persistence ----------

async fn data_survives_reopen(db: &TestDb) {
    let store = db.open().await;
    let d = store.create_domain("acme").await.unwrap();
    let u = store.create_user(&d.id, "alice", "h").await.unwrap();
    assert_eq!(
        store.meta_get_or_init("master_key", "first").await,
        Ok("first".into())
    );
    let s = setup(&store).await;
    let m = monitor(&store, &s.p, &s.conn).await;
    store
        .set_monitor_status(&m.id, status::ACTIVE)
        .await
        .unwrap();
    let link = LinkState {
        up: Some(true),
        changed_us: Some(42),
        note: None,
    };
    store.set_link_state(&m.id, &link).await.unwrap();
    let pt = point(&m, &s.p, 60_000, 8);
    store
        .insert_points(std::slice::from_ref(&pt))
        .await
        .unwrap();
    let pool = pool_rows(&store).await.unwrap();
    store.close().await;

    let store = db.open().await;
    assert_eq!(store.find_domain("acme").await, Ok(Some(d.clone())));
    assert_eq!(store.find_user(&d.id, "alice").await, Ok(Some(u)));
    assert_eq!(
        store.meta_get_or_init("master_key", "second").await,
        Ok("first".into())
    );
    assert_eq!(store.add_pool(&pool_entries()).await, Ok(0));
    assert_eq!(pool_rows(&store).await, Ok(pool));
    let mut gw = s.gw.clone();
    gw.used_connection_number = 1;
    gw.used_connection_group = 1;
    assert_eq!(store.get_gateway(&s.p, &s.gw.id).await, Ok(gw));
    assert_eq!(store.get_cgw(&s.p, &s.cgw.id).await, Ok(s.cgw.clone()));
    assert_eq!(
        store.get_connection(&s.p, &s.conn.id).await,
        Ok(VpnConnection {
            connection_monitor_id: Some(m.id),
            ..s.conn.clone()
        })
    );
    assert_eq!(
        store.get_monitor(&s.p, &m.id).await,
        Ok(ConnectionMonitor {
            status: status::ACTIVE.into(),
            ..m.clone()
        })
    );
    assert_eq!(store.get_link_state(&s.p, &m.id).await, Ok(link));
    assert_eq!(
        store.list_points(&s.p, &m.id, 0, i64::MAX).await,
        Ok(vec![pt])
    );
    // New resources sort after the old ones.
    let later = cgw(&store, &s.p).await;
    let l = store.list_cgws(&s.p, None, Page::default()).await.unwrap();
    assert_eq!(l.items, vec![s.cgw, later]);
    store.close().await;
}

#[test]
fn test_database_url_replaces_only_the_database() {
    use harness::with_database;
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:5432/vpnmon_test", "t1"),
        "postgres://u:p@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@db/x?sslmode=disable", "t1"),
        "postgres://u:p@db/t1?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://db", "t1"), "postgresql://db/t1");
}
