//! `SqlStore::bulk_monitored_links`: the same records as the one-by-one
//! path, visible through the ordinary queries (SQLite).

use store::SqlStore;
use store::prelude::*;

#[tokio::test]
async fn bulk_links_create_cgws_connections_and_monitors_like_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_data_dir(dir.path()).await.unwrap();
    let d = store.create_domain("vpnmon").await.unwrap();
    let project = store.create_project(&d.id, "local-1").await.unwrap();
    let p = project.id.clone();
    let addr: std::net::IpAddr = "198.18.0.1".parse().unwrap();
    store
        .add_pool(&[(domain::eip::pool_entry_id(&addr), addr.to_string())])
        .await
        .unwrap();
    let req: domain::gateway::CreateVgw = serde_json::from_value(serde_json::json!({
        "vpc_id": uuid::Uuid::new_v4().to_string(), "connect_subnet": uuid::Uuid::new_v4().to_string(),
        "local_subnets": ["192.168.0.0/16"], "eip1": {"type": "5_bgp", "bandwidth_size": 10}}))
    .unwrap();
    let plan =
        domain::gateway::plan_create(req, domain::GatewayId::random(), "2026-01-01T00:00:00.000Z")
            .unwrap();
    let gw = store.create_gateway(&p, plan).await.unwrap();
    let eip = gw.eip1.clone().unwrap();
    let addrs: Vec<String> = (1..=2500)
        .map(|i| format!("198.18.{}.{}", 10 + i / 250, i % 250 + 1))
        .collect();

    let ids = store
        .bulk_monitored_links(&p, &gw.id, &eip.id, &addrs, "Bulk-psk-1234")
        .await
        .unwrap();
    assert_eq!(
        ids.len(),
        2500,
        "one monitor per address, across several transactions"
    );

    let monitors = store.list_monitors(&p, None).await.unwrap();
    assert_eq!(monitors.len(), 2500);
    let m = &monitors[1234];
    assert_eq!(m.source_ip, "198.18.0.1");
    assert_eq!(m.status, "PENDING_CREATE");
    assert_eq!(m.destination_ip, addrs[1234], "created in address order");
    let conn = store
        .get_connection(&p, &m.vpn_connection_id)
        .await
        .unwrap();
    assert_eq!(conn.style, "POLICY");
    assert_eq!(conn.vgw_ip, eip.id);
    assert_eq!(conn.connection_monitor_id, Some(m.id));
    assert!(conn.tunnel_local_address.is_none());
    let cgw = store.get_cgw(&p, &conn.cgw_id).await.unwrap();
    assert_eq!(cgw.id_value, addrs[1234]);
    let gw = store.get_gateway(&p, &gw.id).await.unwrap();
    assert_eq!(gw.used_connection_number, 2500);
    // created_at stays unique, so pagination walks every connection once.
    let mut seen = std::collections::HashSet::new();
    let mut page = store::Page {
        limit: Some(1000),
        marker_us: None,
    };
    loop {
        let l = store
            .list_connections(&p, &store::ConnectionFilter::default(), page)
            .await
            .unwrap();
        assert_eq!(l.total, 2500);
        for c in &l.items {
            assert!(seen.insert(c.id), "duplicate {}", c.id);
        }
        if l.items.len() < 1000 {
            break;
        }
        page.marker_us = domain::time::parse_marker(l.next_marker.as_deref().unwrap());
    }
    assert_eq!(seen.len(), 2500);
    // A bad address fails cleanly and writes nothing of its batch.
    let err = store
        .bulk_monitored_links(
            &p,
            &gw.id,
            &eip.id,
            &["not-an-ip".to_string()],
            "Bulk-psk-1234",
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("customer_gateway.id_value"),
        "{err}"
    );
    assert_eq!(store.list_monitors(&p, None).await.unwrap().len(), 2500);
    store.close().await;
}
