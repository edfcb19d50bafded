//! The seed flow, field by field, plus lists, pagination and deletes.

use crate::helpers::{TestApp, keys, uuid};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn seed_flow_create_show_list_delete() {
    let app = TestApp::spawn().await;
    let (vpc, sub) = (uuid(), uuid());

    // VPN gateway: create has no status/eip/created_at; show has them.
    let r = app
        .post(
            "/vpn-gateways",
            json!({"vpn_gateway": {"vpc_id": vpc, "connect_subnet": sub, "local_subnets": ["192.168.0.0/24"],
                "eip1": {"type": "5_bgp", "bandwidth_size": 10}, "eip2": {"type": "5_bgp", "bandwidth_size": 10}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_eq!(r.body["request_id"], r.request_id.clone().unwrap().as_str());
    let g = &r.body["vpn_gateway"];
    for absent in ["status", "eip1", "eip2", "created_at"] {
        assert!(
            g.get(absent).is_none(),
            "create response must not have {absent}"
        );
    }
    assert_eq!(g["network_type"], "public");
    assert_eq!(g["attachment_type"], "vpc");
    assert_eq!(g["ip_version"], "ipv4");
    assert_eq!(g["vpc_id"], vpc.as_str());
    assert_eq!(g["access_vpc_id"], vpc.as_str());
    assert_eq!(g["access_subnet_id"], sub.as_str());
    assert_eq!(g["bgp_asn"], 64512);
    assert_eq!(g["flavor"], "Professional1");
    assert_eq!(g["connection_number"], 200);
    assert_eq!(g["used_connection_number"], 0);
    assert_eq!(g["enterprise_project_id"], "0");
    assert_eq!(g["ha_mode"], "active-active");
    let gid = g["id"].as_str().unwrap().to_string();
    assert!(g["name"].as_str().unwrap().starts_with("vpngw-"));

    let s = app.get(&format!("/vpn-gateways/{gid}")).await;
    assert_eq!(s.status, StatusCode::OK);
    let g = &s.body["vpn_gateway"];
    assert_eq!(g["status"], "ACTIVE");
    assert_eq!(g["eip1"]["ip_address"], "127.0.0.2");
    assert_eq!(g["eip2"]["ip_address"], "127.0.0.3");
    assert_eq!(g["eip1"]["ip_version"], 4);
    assert_eq!(g["eip1"]["type"], "5_bgp");
    assert_eq!(g["eip1"]["bandwidth_size"], 10);
    let created = g["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 24, "ms precision + Z: {created}");
    assert!(created.ends_with('Z'));
    let eip1 = g["eip1"]["id"].as_str().unwrap().to_string();

    // Customer gateway.
    let r = app
        .post(
            "/customer-gateways",
            json!({"customer_gateway": {"id_value": "127.0.0.10", "bgp_asn": 65000}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let c = &r.body["customer_gateway"];
    assert_eq!(
        keys(c),
        [
            "bgp_asn",
            "created_at",
            "id",
            "id_type",
            "id_value",
            "name",
            "tags",
            "updated_at"
        ]
    );
    assert_eq!(c["id_type"], "ip");
    assert_eq!(c["id_value"], "127.0.0.10");
    assert_eq!(c["bgp_asn"], 65000);
    let cid = c["id"].as_str().unwrap().to_string();

    // Connection: create has no status / connection_monitor_id; style upper case.
    let r = app
        .post(
            "/vpn-connection",
            json!({"vpn_connection": {"vgw_id": gid, "vgw_ip": eip1, "cgw_id": cid,
                "peer_subnets": ["10.10.0.0/16"], "psk": "Abcd1234!x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let k = &r.body["vpn_connection"];
    assert!(k.get("status").is_none());
    assert!(k.get("connection_monitor_id").is_none());
    assert!(k.get("psk").is_none(), "psk is never returned");
    assert_eq!(k["style"], "STATIC");
    assert_eq!(k["vgw_ip"], eip1.as_str());
    assert_eq!(k["enable_nqa"], false);
    assert_eq!(k["ha_role"], "master");
    assert_eq!(k["ikepolicy"]["ike_version"], "v2");
    assert_eq!(k["ikepolicy"]["dh_group"], "group15");
    assert_eq!(k["ikepolicy"]["dpd"]["interval"], 30);
    assert_eq!(k["ipsecpolicy"]["pfs"], "group15");
    assert_eq!(k["ipsecpolicy"]["lifetime_seconds"], 3600);
    let tl = k["tunnel_local_address"].as_str().unwrap();
    assert!(tl.starts_with("169.254.") && tl.ends_with("/30"), "{tl}");
    let conn = k["id"].as_str().unwrap().to_string();
    let s = app.get(&format!("/vpn-connection/{conn}")).await;
    assert_eq!(s.body["vpn_connection"]["status"], "ACTIVE");
    assert!(
        s.body["vpn_connection"]
            .get("connection_monitor_id")
            .is_none()
    );
    let s = app.get(&format!("/vpn-gateways/{gid}")).await;
    assert_eq!(s.body["vpn_gateway"]["used_connection_number"], 1);

    // Monitor: create without status; show with it.
    let r = app
        .post(
            "/connection-monitors",
            json!({"connection_monitor": {"vpn_connection_id": conn}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let m = &r.body["connection_monitor"];
    assert_eq!(
        keys(m),
        [
            "destination_ip",
            "id",
            "proto_type",
            "source_ip",
            "type",
            "vpn_connection_id"
        ]
    );
    assert_eq!(m["source_ip"], "127.0.0.2");
    assert_eq!(m["destination_ip"], "127.0.0.10");
    assert_eq!(m["type"], "gateway");
    assert_eq!(m["proto_type"], "icmp");
    assert_eq!(m["vpn_connection_id"], conn.as_str());
    let mid = m["id"].as_str().unwrap().to_string();
    let s = app.get(&format!("/connection-monitors/{mid}")).await;
    assert_eq!(s.status, StatusCode::OK);
    let shown = &s.body["connection_monitor"];
    assert_eq!(shown["status"], "PENDING_CREATE");
    assert_eq!(
        keys(shown),
        [
            "destination_ip",
            "id",
            "proto_type",
            "source_ip",
            "status",
            "type",
            "vpn_connection_id"
        ]
    );
    let l = app
        .get(&format!("/connection-monitors?vpn_connection_id={conn}"))
        .await;
    assert_eq!(l.body["connection_monitors"].as_array().unwrap().len(), 1);
    assert_eq!(l.body["connection_monitors"][0], *shown);
    assert!(l.body.get("page_info").is_none());
    let l = app
        .get(&format!(
            "/connection-monitors?vpn_connection_id={}",
            uuid()
        ))
        .await;
    assert_eq!(l.body["connection_monitors"], json!([]));
    let s = app.get(&format!("/vpn-connection/{conn}")).await;
    assert_eq!(
        s.body["vpn_connection"]["connection_monitor_id"],
        mid.as_str()
    );

    // Delete in reverse order: 204 with an empty body.
    for path in [
        format!("/connection-monitors/{mid}"),
        format!("/vpn-connection/{conn}"),
        format!("/customer-gateways/{cid}"),
        format!("/vpn-gateways/{gid}"),
    ] {
        let d = app.delete(&path).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{path}: {}", d.raw);
        assert!(d.raw.is_empty());
        assert!(d.request_id.is_some());
        app.get(&path).await.assert_error(404, "VPN.0004");
    }
    // The gateway's EIPs went back to the pool: a new gateway gets 127.0.0.2 again.
    let (_, _, addr) = app.gateway().await;
    assert_eq!(addr, "127.0.0.2");
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_connection_deletes_its_monitor() {
    let app = TestApp::spawn().await;
    let (_, _, conn, mid) = app.seed().await;
    assert_eq!(
        app.delete(&format!("/vpn-connection/{conn}")).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&format!("/connection-monitors/{mid}"))
        .await
        .assert_error(404, "VPN.0004");
    assert!(app.watcher.deleted.lock().unwrap().contains(&mid));
    app.stop().await;
}

#[tokio::test]
async fn gateway_and_cgw_in_use_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let (g, c, conn, _) = app.seed().await;
    let msg = app
        .delete(&format!("/vpn-gateways/{g}"))
        .await
        .assert_error(400, "VPN.0001");
    assert!(msg.contains(&conn), "{msg}");
    let msg = app
        .delete(&format!("/customer-gateways/{c}"))
        .await
        .assert_error(400, "VPN.0001");
    assert!(msg.contains(&conn), "{msg}");
    app.stop().await;
}

#[tokio::test]
async fn updates_change_what_the_api_allows() {
    let app = TestApp::spawn().await;
    let (g, c, conn, _) = app.seed().await;
    let r = app
        .put(
            &format!("/vpn-gateways/{g}"),
            json!({"vpn_gateway": {"name": "gw-renamed"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["vpn_gateway"]["name"], "gw-renamed");
    assert!(r.body["vpn_gateway"].get("status").is_none());
    let r = app
        .put(
            &format!("/customer-gateways/{c}"),
            json!({"customer_gateway": {"name": "cgw-renamed"}}),
        )
        .await;
    assert_eq!(r.body["customer_gateway"]["name"], "cgw-renamed");
    app.put(
        &format!("/customer-gateways/{c}"),
        json!({"customer_gateway": {"id_value": "127.0.0.11"}}),
    )
    .await
    .assert_error(400, "VPN.0013");
    let r = app
        .put(&format!("/vpn-connection/{conn}"), json!({"vpn_connection": {"name": "conn-renamed", "ikepolicy": {"dh_group": "group20"}}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let k = &r.body["vpn_connection"];
    assert_eq!(k["name"], "conn-renamed");
    assert_eq!(k["ikepolicy"]["dh_group"], "group20");
    assert_eq!(
        k["ikepolicy"]["ike_version"], "v2",
        "other IKE fields are kept"
    );
    assert!(k.get("status").is_none());
    assert!(k.get("connection_monitor_id").is_some());
    let s = app.get(&format!("/vpn-connection/{conn}")).await;
    assert_eq!(s.body["vpn_connection"]["name"], "conn-renamed");
    app.stop().await;
}

#[tokio::test]
async fn customer_gateways_and_connections_paginate_by_marker() {
    let app = TestApp::spawn().await;
    let (g, e, _) = app.gateway().await;
    let mut cgws = Vec::new();
    let mut conns = Vec::new();
    for i in 0..5 {
        let c = app.cgw(&format!("127.0.1.{}", i + 1)).await;
        conns.push(app.connection(&g, &e, &c).await);
        cgws.push(c);
    }
    for (path, key, all) in [
        ("/customer-gateways", "customer_gateways", &cgws),
        ("/vpn-connection", "vpn_connections", &conns),
    ] {
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let q = match &marker {
                Some(m) => format!("{path}?limit=2&marker={}", urlencode(m)),
                None => format!("{path}?limit=2"),
            };
            let r = app.get(&q).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
            assert_eq!(r.body["total_count"], 5);
            let items = r.body[key].as_array().unwrap();
            assert_eq!(r.body["page_info"]["current_count"], items.len());
            seen.extend(items.iter().map(|x| x["id"].as_str().unwrap().to_string()));
            if items.len() < 2 {
                break;
            }
            marker = Some(
                r.body["page_info"]["next_marker"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(&seen, all, "{path}: every item once, in creation order");
    }
    let r = app
        .get(&format!("/customer-gateways?cgw_id={}", cgws[3]))
        .await;
    assert_eq!(r.body["customer_gateways"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["total_count"], 1);
    let r = app
        .get(&format!("/vpn-connection?vpn_id={}", conns[2]))
        .await;
    assert_eq!(r.body["vpn_connections"][0]["id"], conns[2].as_str());
    let r = app
        .get(&format!("/vpn-connection?vgw_id={g}&vgw_ip={e}"))
        .await;
    assert_eq!(r.body["total_count"], 5);
    let r = app.get(&format!("/vpn-gateways?vgw_id={g}")).await;
    assert_eq!(r.body["vpn_gateways"].as_array().unwrap().len(), 1);
    assert!(r.body.get("page_info").is_none());
    app.get("/customer-gateways?limit=201")
        .await
        .assert_error(400, "VPN.0001");
    app.get("/customer-gateways?limit=x")
        .await
        .assert_error(400, "VPN.0001");
    app.get("/vpn-connection?marker=yesterday")
        .await
        .assert_error(400, "VPN.0001");
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn eip_pool_exhaustion_is_a_clear_400() {
    let app = TestApp::spawn().await;
    for _ in 0..4 {
        let r = app
            .post(
                "/vpn-gateways",
                json!({"vpn_gateway": {"vpc_id": uuid(), "connect_subnet": uuid(), "local_subnets": ["192.168.0.0/24"],
                    "eip1": {"type": "5_bgp", "bandwidth_size": 10}, "eip2": {"type": "5_bgp", "bandwidth_size": 10}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    }
    let r = app
        .post(
            "/vpn-gateways",
            json!({"vpn_gateway": {"vpc_id": uuid(), "connect_subnet": uuid(), "local_subnets": ["192.168.0.0/24"],
                "eip1": {"type": "5_bgp", "bandwidth_size": 10}}}),
        )
        .await;
    let msg = r.assert_error(400, "VPN.0001");
    assert!(msg.contains("exhausted"), "{msg}");
    app.stop().await;
}

#[tokio::test]
async fn connection_monitors_page_with_limit_and_marker_as_an_extension() {
    let app = crate::helpers::TestApp::spawn().await;
    let (g, e, _) = app.gateway().await;
    let mut made = Vec::new();
    for i in 0..5 {
        let c = app.cgw(&format!("127.0.0.{}", 20 + i)).await;
        let conn = app.connection(&g, &e, &c).await;
        made.push(app.monitor(&conn).await);
    }
    // Without limit or marker: the reference's whole list, no page_info.
    let all = app.get("/connection-monitors").await;
    assert_eq!(all.status.as_u16(), 200, "{}", all.raw);
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["connection_monitors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&all.body), made);
    assert!(all.body.get("page_info").is_none(), "{}", all.raw);
    assert!(all.body.get("total_count").is_none(), "{}", all.raw);
    assert_eq!(
        all.body["request_id"],
        all.request_id.clone().unwrap().as_str()
    );

    // Pages of two, in creation order, following next_marker.
    let mut got = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..4 {
        let q = match &marker {
            Some(m) => format!("/connection-monitors?limit=2&marker={m}"),
            None => "/connection-monitors?limit=2".to_string(),
        };
        let r = app.get(&q).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
        assert_eq!(r.body["total_count"], 5, "{}", r.raw);
        let page = ids(&r.body);
        assert_eq!(r.body["page_info"]["current_count"], page.len());
        if page.is_empty() {
            break;
        }
        got.extend(page);
        marker = r.body["page_info"]["next_marker"]
            .as_str()
            .map(|m| m.replace('+', "%2B").replace(':', "%3A"));
    }
    assert_eq!(got, made);
    app.get("/connection-monitors?limit=2001")
        .await
        .assert_error(400, "VPN.0001");
    app.get("/connection-monitors?marker=yesterday")
        .await
        .assert_error(400, "VPN.0001");
    app.stop().await;
}
