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

#[path = "conformance/alarms.rs"]
mod alarms;
#[path = "conformance/harness.rs"]
mod harness;
#[path = "conformance/identity.rs"]
mod identity;
#[path = "conformance/measurements.rs"]
mod measurements;
#[path = "conformance/outbox.rs"]
mod outbox;
#[path = "conformance/probing.rs"]
mod probing;
#[path = "conformance/resources.rs"]
mod resources;
#[path = "conformance/schema.rs"]
mod schema;
#[path = "conformance/topics.rs"]
mod topics;

// The cases, one module per store capability; the macro below names them
// `sqlite::<case>` and `postgres::<case>`.
use alarms::*;
use identity::*;
use measurements::*;
use outbox::*;
use probing::*;
use resources::*;
use schema::*;
use topics::*;

use domain::connection::{CreateConnection, UpdateConnection, VpnConnection};
use domain::customer_gateway::{CreateCgw, CustomerGateway, UpdateCgw};
use domain::eip::{Eip, EipRequest, pool_entry_id};
use domain::gateway::{CreateVgw, GatewayPlan, UpdateVgw, VpnGateway};
use domain::monitor::{ConnectionMonitor, status};
use domain::retention::{Level, Retention};
use domain::{ConnectionId, DomainError, MonitorId, NodeId, ProjectId};
use harness::{TestDb, on_every_engine};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;
use store::prelude::*;
use store::{
    Agg, ConnectionFilter, CredentialRecord, LinkState, Listed, MonitorUpdate, NodeRegistration,
    NodeReport, Page, ProbeMonitor, Pruned, Rollup, SqlStore, TokenRecord, WindowPoint,
};

on_every_engine! {
    store: [
        iam_domains_projects_and_users,
        iam_grants_list_a_users_projects,
        iam_tokens_round_trip_and_revoke,
        iam_login_locks_round_trip_and_clear,
        iam_credentials_crud,
        meta_keeps_the_first_value,
        meta_get_and_delete,
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
        nodes_register_renew_list_leave,
        a_lapsed_lease_cannot_be_renewed_only_taken_again,
        a_live_node_cannot_register_twice,
        points_insert_list_prune,
        points_insert_in_chunks,
        points_ranges_across_time_buckets,
        rollups_aggregate_each_window_once,
        longer_periods_roll_up_from_shorter_ones_exactly,
        retention_prunes_each_level_at_its_own_age,
        retention_keeps_what_is_not_rolled_up_yet,
        prune_in_bounded_steps_deletes_exactly_the_old_rows,
        alarm_crud,
        alarm_needs_a_connection_of_its_project,
        alarm_list_pages_from_start_in_both_orders,
        alarm_tenant_isolation,
        alarm_evaluation_records_each_transition_once,
        alarm_history_filters_and_pages,
        alarm_without_data_for_three_hours_is_insufficient_data,
        alarm_of_a_longer_period_sees_each_completed_bucket_once,
        alarm_of_a_longer_period_waits_two_periods_more_for_data,
        alarm_no_data_is_never_early_and_at_most_the_save_interval_late,
        topic_crud_and_create_is_idempotent_by_name,
        topic_tenant_isolation,
        subscriptions_add_list_cancel_and_go_with_their_topic,
        outbox_confirms_with_the_token_and_publishes_to_confirmed_only,
        outbox_records_each_attempt_and_retries_until_delivered_or_given_up,
        alarm_notices_go_into_the_outbox_with_the_state_change,
        alarms_of_a_connection_and_their_summary_in_the_overview,
    ],
    db: [
        rule_changes_on_another_node_reach_the_evaluating_one,
        an_evaluation_from_a_stale_cache_writes_nothing_over_newer_memory,
        swept_data_times_survive_a_restart_and_are_not_evaluated_twice,
        data_survives_reopen,
        concurrent_creates_on_two_nodes_take_unique_markers,
        concurrent_monitor_creates_on_two_nodes_one_wins,
        partitions_are_created_ahead_and_dropped_whole,
        partitioning_migration_keeps_existing_measurements,
        a_database_a_newer_vpnmon_migrated_is_refused_untouched,
        backup_under_write_load_holds_every_acknowledged_write,
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

/// The `updated_at` an update wrote, checked to lie between `before` (read
/// just before the update) and now. The suite clock is shared by the cases
/// running in parallel, and any of them may move it on meanwhile.
fn stamped_since(updated_at: &str, before: &str) -> String {
    let after = now();
    let parse = |s: &str| domain::time::parse_marker(s).expect("a wire timestamp");
    let t = parse(updated_at);
    assert!(
        parse(before) <= t && t <= parse(&after),
        "updated_at {updated_at} outside [{before}, {after}]"
    );
    updated_at.to_string()
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
