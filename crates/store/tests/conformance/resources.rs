//! VPN resources: the EIP pool, gateways, customer gateways, connections, monitors, tenant isolation, pagination and filters.

use super::*;

// ---------- EIP pool ----------

pub(crate) async fn eip_pool_add_is_idempotent(store: &SqlStore) {
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

pub(crate) async fn eip_allocation_takes_first_free_in_seq_order(store: &SqlStore) {
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

pub(crate) async fn eip_bind_by_id_rejects_bound_and_unknown_entries(store: &SqlStore) {
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

pub(crate) async fn eip_exhausted_pool_is_invalid_and_rolls_back(store: &SqlStore) {
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

pub(crate) async fn eip_deleting_a_gateway_returns_its_eips(store: &SqlStore) {
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

pub(crate) async fn eip_bound_in_one_project_cannot_be_bound_by_another(store: &SqlStore) {
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
pub(crate) async fn eip_concurrent_allocations_each_get_their_own(store: &SqlStore) {
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

pub(crate) async fn gateway_crud(store: &SqlStore) {
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
    expected.updated_at = stamped_since(&updated.updated_at, &at);
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

pub(crate) async fn gateway_update_rebinds_eip_unless_a_connection_uses_it(store: &SqlStore) {
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

pub(crate) async fn cgw_crud(store: &SqlStore) {
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
    expected.updated_at = stamped_since(&updated.updated_at, &at);
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

pub(crate) async fn connection_crud(store: &SqlStore) {
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
    expected.updated_at = stamped_since(&updated.updated_at, &at);
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

pub(crate) async fn connection_create_checks_its_references(store: &SqlStore) {
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

pub(crate) async fn gateway_and_cgw_in_use_cannot_be_deleted(store: &SqlStore) {
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

pub(crate) async fn monitor_crud_and_connection_monitor_id(store: &SqlStore) {
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

pub(crate) async fn second_monitor_is_monitor_exists(store: &SqlStore) {
    let s = setup(store).await;
    let first = monitor(store, &s.p, &s.conn).await;
    assert_eq!(
        store.create_monitor(&s.p, &s.conn.id, id()).await,
        Err(DomainError::MonitorExists(s.conn.id))
    );
    assert_eq!(store.list_monitors(&s.p, None).await, Ok(vec![first]));
}

pub(crate) async fn monitor_of_fqdn_cgw_is_invalid(store: &SqlStore) {
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

pub(crate) async fn connection_cgw_cannot_change_while_monitored(store: &SqlStore) {
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

pub(crate) async fn deleting_a_connection_deletes_its_monitor_and_points(store: &SqlStore) {
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

pub(crate) async fn tenant_isolation(store: &SqlStore) {
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

pub(crate) async fn cgw_pagination(store: &SqlStore) {
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

pub(crate) async fn connection_pagination(store: &SqlStore) {
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

pub(crate) async fn connection_filters(store: &SqlStore) {
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

pub(crate) async fn monitor_list_filter(store: &SqlStore) {
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

// ---------- several writers ----------

/// Two stores on one database, as two nodes have. SQLite is one node's
/// store (one file, one writer connection; a second process would get
/// `SQLITE_BUSY`, not a queue), so there both "nodes" share one store and
/// its writer serializes them; PostgreSQL runs them in parallel.
pub(crate) async fn two_nodes(db: &TestDb) -> (SqlStore, SqlStore) {
    let a = db.open().await;
    let b = match a.backend() {
        store::Backend::Sqlite => a.clone(),
        store::Backend::Postgres => db.open().await,
    };
    (a, b)
}

/// Two stores on one database stand for two nodes: creates through both at
/// once (the suite clock stands still, so every create asks for the same
/// millisecond) still get distinct `created_at` markers, and paging by
/// marker walks every resource exactly once.
pub(crate) async fn concurrent_creates_on_two_nodes_take_unique_markers(db: &TestDb) {
    let (a, b) = two_nodes(db).await;
    let s = setup(&a).await;
    const EACH: usize = 12;
    let mut tasks = Vec::new();
    for i in 0..2 * EACH {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let p = s.p.clone();
        let gw = s.gw.clone();
        tasks.push(tokio::spawn(async move {
            let c = store
                .create_cgw(&p, &cgw_record(json!({"id_value": "127.0.0.10"})))
                .await
                .expect("create customer gateway");
            let conn = try_connection(&store, &p, &gw.id, &eip1_id(&gw), &c.id)
                .await
                .expect("create connection");
            (c, conn)
        }));
    }
    let mut cgw_markers = HashSet::new();
    let mut conn_markers = HashSet::new();
    for t in tasks {
        let (c, conn) = t.await.expect("create task");
        assert!(
            cgw_markers.insert(c.created_at.clone()),
            "cgw marker {} twice",
            c.created_at
        );
        assert!(
            conn_markers.insert(conn.created_at.clone()),
            "connection marker {} twice",
            conn.created_at
        );
    }
    assert_eq!(cgw_markers.len(), 2 * EACH);
    assert_eq!(conn_markers.len(), 2 * EACH);
    // Both nodes page the same list, each resource once.
    for store in [&a, &b] {
        let total = 2 * EACH + 1;
        let (listed, _) = walk_pages(
            |page| store.list_cgws(&s.p, None, page),
            5,
            total as i64,
            |c: &CustomerGateway| c.created_at.as_str(),
        )
        .await;
        assert_eq!(listed.len(), total, "every customer gateway once");
        let unique: HashSet<_> = listed.iter().map(|c| c.id).collect();
        assert_eq!(unique.len(), listed.len());
    }
    a.close().await;
    b.close().await;
}

/// Concurrent creates of a monitor on one connection through two nodes:
/// the unique index on the connection lets exactly one through, and the
/// other is `MonitorExists`.
pub(crate) async fn concurrent_monitor_creates_on_two_nodes_one_wins(db: &TestDb) {
    let (a, b) = two_nodes(db).await;
    let s = setup(&a).await;
    let mut conns = vec![s.conn.clone()];
    for _ in 0..5 {
        let c = cgw(&a, &s.p).await;
        conns.push(connection(&a, &s.p, &s.gw, &c).await);
    }
    for conn in &conns {
        let (ra, rb) = tokio::join!(
            tokio::spawn({
                let (a, p, c) = (a.clone(), s.p.clone(), conn.id);
                async move { a.create_monitor(&p, &c, id()).await }
            }),
            tokio::spawn({
                let (b, p, c) = (b.clone(), s.p.clone(), conn.id);
                async move { b.create_monitor(&p, &c, id()).await }
            }),
        );
        let results = [ra.expect("create task"), rb.expect("create task")];
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let lost: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(won.len(), 1, "one create wins: {results:?}");
        assert_eq!(lost, vec![&DomainError::MonitorExists(conn.id)]);
        assert_eq!(
            b.list_monitors(&s.p, Some(&conn.id)).await,
            Ok(vec![won[0].clone()])
        );
    }
    a.close().await;
    b.close().await;
}
