//! The probe engine's seam: the monitor feed, status and link state.

use super::*;

pub(crate) async fn monitors_for_probing_and_status(store: &SqlStore) {
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

pub(crate) async fn link_state_round_trip(store: &SqlStore) {
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

pub(crate) async fn monitor_updates_apply_in_one_batch(store: &SqlStore) {
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

// ---------- node membership ----------

fn node(name: &str) -> NodeRegistration {
    NodeRegistration {
        id: NodeId::random(),
        name: name.into(),
        host: format!("{name}.example"),
        process: Some(format!("linux:boot:pidns:1:{name}")),
    }
}

const TTL: Duration = Duration::from_secs(8);

pub(crate) async fn nodes_register_renew_list_leave(store: &SqlStore) {
    assert_eq!(store.live_nodes().await, Ok(vec![]));
    let b = node("node-b");
    let a = node("node-a");
    let lease_b = store.register_node(&b, TTL).await.expect("register b");
    let lease_a = store.register_node(&a, TTL).await.expect("register a");
    assert_eq!(lease_a.expires_us - lease_a.heartbeat_us, 8_000_000);
    let live = store.live_nodes().await.expect("live nodes");
    let names: Vec<_> = live.iter().map(|n| (n.name.as_str(), n.id)).collect();
    assert_eq!(names, vec![("node-a", a.id), ("node-b", b.id)], "by name");
    assert_eq!(live[0].host, "node-a.example");
    assert_eq!(live[0].started_us, lease_a.heartbeat_us);
    assert_eq!(live[0].addresses, Vec::<String>::new());
    assert_eq!(live[0].monitors, 0);
    assert_eq!(live[0].process, a.process, "the process round-trips");

    let report = NodeReport {
        addresses: vec!["198.18.0.5".into(), "2001:db8::5".into()],
        monitors: 42,
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let renewed = store
        .renew_node(&a.id, TTL, &report)
        .await
        .expect("renew a")
        .expect("a's lease is still valid");
    assert!(renewed.heartbeat_us > lease_a.heartbeat_us);
    assert_eq!(renewed.expires_us - renewed.heartbeat_us, 8_000_000);
    let live = store.live_nodes().await.expect("live nodes");
    assert_eq!(live[0].addresses, report.addresses);
    assert_eq!(live[0].monitors, 42);
    assert_eq!(live[0].heartbeat_us, renewed.heartbeat_us);
    assert_eq!(live[0].started_us, lease_a.heartbeat_us, "start stays");

    assert_eq!(store.leave_node(&b.id).await, Ok(true));
    assert_eq!(store.leave_node(&b.id).await, Ok(false));
    assert_eq!(
        store.renew_node(&b.id, TTL, &NodeReport::default()).await,
        Ok(None),
        "a node that left has no lease to renew"
    );
    let ids: Vec<_> = store
        .live_nodes()
        .await
        .expect("live nodes")
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, vec![a.id]);
    let _ = lease_b;
}

pub(crate) async fn a_lapsed_lease_cannot_be_renewed_only_taken_again(store: &SqlStore) {
    let a = node("node-a");
    store
        .register_node(&a, Duration::from_millis(20))
        .await
        .expect("register");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        store.live_nodes().await,
        Ok(vec![]),
        "not live once run out"
    );
    assert_eq!(
        store.renew_node(&a.id, TTL, &NodeReport::default()).await,
        Ok(None),
        "River's rule: a lease that ran out is not renewed"
    );
    // Joining again is a fresh lease.
    let lease = store.register_node(&a, TTL).await.expect("register again");
    assert!(
        store
            .renew_node(&a.id, TTL, &NodeReport::default())
            .await
            .expect("renew")
            .is_some()
    );
    assert_eq!(lease.expires_us - lease.heartbeat_us, 8_000_000);
    assert_eq!(store.live_nodes().await.map(|l| l.len()), Ok(1));
}

pub(crate) async fn a_live_node_cannot_register_twice(store: &SqlStore) {
    let a = node("node-a");
    store.register_node(&a, TTL).await.expect("register");
    assert!(matches!(
        store.register_node(&a, TTL).await,
        Err(DomainError::Internal(_))
    ));
    assert_eq!(store.live_nodes().await.map(|l| l.len()), Ok(1));
}
