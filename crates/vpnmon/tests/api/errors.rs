//! Bad input: always a 400/404/405 Huawei error that names the problem,
//! never a 500.

use crate::helpers::{TestApp, uuid};
use reqwest::Method;
use serde_json::json;

async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> crate::helpers::Resp {
    let mut rb = app
        .client
        .post(format!("{}{}", app.base, app.v5(path)))
        .header("X-Auth-Token", &app.token);
    if let Some(ct) = content_type {
        rb = rb.header("Content-Type", ct);
    }
    TestApp::finish(rb.body(body)).await
}

#[tokio::test]
async fn malformed_bodies_are_400_naming_the_problem() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, &[u8], &str, &str)> = vec![
        (
            "/customer-gateways",
            b"{\"customer_gateway\": ",
            "VPN.0001",
            "malformed JSON",
        ),
        (
            "/customer-gateways",
            b"not json",
            "VPN.0001",
            "malformed JSON",
        ),
        ("/customer-gateways", b"", "VPN.0001", "body is required"),
        ("/customer-gateways", b"[]", "VPN.0001", "invalid type"),
        (
            "/customer-gateways",
            b"{}",
            "VPN.0001",
            "customer_gateway is required",
        ),
        (
            "/customer-gateways",
            b"{\"customer_gateway\": 5}",
            "VPN.0001",
            "customer_gateway: invalid type: integer `5`, expected an object",
        ),
        (
            "/customer-gateways",
            b"{\"customer_gateway\": {}}",
            "VPN.0001",
            "customer_gateway.id_value is required",
        ),
        (
            "/customer-gateways",
            b"{\"customer_gateway\": {\"id_value\": 5}}",
            "VPN.0001",
            "customer_gateway.id_value",
        ),
        (
            "/customer-gateways",
            b"{\"customer_gateway\": {\"id_value\": \"127.0.0.10\", \"bgp_asn\": \"x\"}}",
            "VPN.0001",
            "customer_gateway.bgp_asn",
        ),
        (
            "/customer-gateways",
            b"{\"customer_gateway\": {\"id_value\": \"300.1.1.1\"}}",
            "VPN.0001",
            "customer_gateway.id_value",
        ),
        (
            "/customer-gateways",
            b"{\"customer_gateway\": {\"id_value\": \"127.0.0.10\", \"colour\": 1}}",
            "VPN.0013",
            "customer_gateway.colour",
        ),
        (
            "/customer-gateways",
            b"{\"customer_gateway\": {\"id_value\": \"127.0.0.10\"}, \"extra\": 1}",
            "VPN.0013",
            "extra",
        ),
        (
            "/connection-monitors",
            b"{\"connection_monitor\": {}}",
            "VPN.0001",
            "vpn_connection_id is required",
        ),
        (
            "/connection-monitors",
            b"{\"connection_monitor\": {\"vpn_connection_id\": \"abc\"}}",
            "VPN.0001",
            "not a valid UUID",
        ),
        (
            "/connection-monitors",
            b"{\"connection_monitor\": {\"vpn_connection_id\": 7}}",
            "VPN.0001",
            "connection_monitor.vpn_connection_id",
        ),
    ];
    for (path, body, code, needle) in cases {
        let r = raw_post(&app, path, Some("application/json"), body.to_vec()).await;
        let msg = r.assert_error(400, code);
        assert!(
            msg.contains(needle),
            "{path} {:?}: {msg:?} should mention {needle:?}",
            String::from_utf8_lossy(body)
        );
        assert!(!msg.contains("line "), "no parser positions: {msg}");
    }
    app.stop().await;
}

#[tokio::test]
async fn trailing_data_after_the_json_document_is_400_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    let cases: [&[u8]; 3] = [
        b"{\"customer_gateway\":{\"id_value\":\"127.0.0.60\"}}xyz",
        b"{\"customer_gateway\":{\"id_value\":\"127.0.0.60\"}}{\"customer_gateway\":{\"colour\":1}}",
        b"{\"customer_gateway\":{\"id_value\":\"127.0.0.60\"}} ,",
    ];
    for body in cases {
        let r = raw_post(
            &app,
            "/customer-gateways",
            Some("application/json"),
            body.to_vec(),
        )
        .await;
        let msg = r.assert_error(400, "VPN.0001");
        assert!(
            msg.contains("unexpected data after the JSON object"),
            "{:?}: {msg}",
            String::from_utf8_lossy(body)
        );
    }
    // Whitespace after the document is fine.
    let r = raw_post(
        &app,
        "/customer-gateways",
        Some("application/json"),
        b"{\"customer_gateway\":{\"id_value\":\"127.0.0.61\"}} \n".to_vec(),
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.raw);
    let listed = app.get("/customer-gateways").await;
    assert_eq!(
        listed.body["customer_gateways"].as_array().map(Vec::len),
        Some(1)
    );
    app.stop().await;
}

#[tokio::test]
async fn gateway_validation_names_fields() {
    let app = TestApp::spawn().await;
    let base = || {
        json!({"vpc_id": uuid(), "connect_subnet": uuid(), "local_subnets": ["192.168.0.0/24"],
                         "eip1": {"type": "5_bgp", "bandwidth_size": 10}})
    };
    let cases = [
        (
            "local_subnets",
            json!(["192.168.0.1/24"]),
            "vpn_gateway.local_subnets[0]",
        ),
        (
            "local_subnets",
            json!(["banana"]),
            "vpn_gateway.local_subnets[0]",
        ),
        ("local_subnets", json!([]), "vpn_gateway.local_subnets"),
        ("vpc_id", json!("not-a-uuid"), "vpn_gateway.vpc_id"),
        ("flavor", json!("Huge"), "vpn_gateway.flavor"),
        ("bgp_asn", json!(0), "vpn_gateway.bgp_asn"),
        ("bgp_asn", json!(1.5), "vpn_gateway.bgp_asn"),
        ("eip1", json!({"type": "9_bgp"}), "vpn_gateway.eip1.type"),
        ("eip1", json!({"id": "nope"}), "vpn_gateway.eip1.id"),
        ("eip1", json!({"id": uuid()}), "not an EIP"),
        ("name", json!("bad name!"), "vpn_gateway.name"),
    ];
    for (field, value, needle) in cases {
        let mut b = base();
        b[field] = value.clone();
        let r = app.post("/vpn-gateways", json!({"vpn_gateway": b})).await;
        let msg = r.assert_error(400, "VPN.0001");
        assert!(
            msg.contains(needle),
            "{field}={value}: {msg:?} should mention {needle:?}"
        );
    }
    let mut b = base();
    b.as_object_mut().unwrap().remove("eip1");
    let msg = app
        .post("/vpn-gateways", json!({"vpn_gateway": b}))
        .await
        .assert_error(400, "VPN.0001");
    assert!(msg.contains("vpn_gateway.eip1"), "{msg}");
    app.stop().await;
}

#[tokio::test]
async fn connection_validation_names_fields() {
    let app = TestApp::spawn().await;
    let (g, e, _) = app.gateway().await;
    let c = app.cgw("127.0.0.10").await;
    let base = || json!({"vgw_id": g, "vgw_ip": e, "cgw_id": c, "peer_subnets": ["10.10.0.0/16"], "psk": "Abcd1234!x"});
    let cases = [
        (
            "peer_subnets",
            json!(["10.10.0.0/33"]),
            "vpn_connection.peer_subnets[0]",
            400,
        ),
        ("peer_subnets", json!(["100.64.0.0/16"]), "reserved", 400),
        ("peer_subnets", json!(["192.168.0.0/25"]), "overlaps", 400),
        ("psk", json!("short"), "vpn_connection.psk", 400),
        ("vgw_ip", json!(uuid()), "vpn_connection.vgw_ip", 400),
        ("style", json!("ROUTE"), "vpn_connection.style", 400),
        ("tunnel_local_address", json!("10.0.0.1/30"), "tunnel", 400),
        (
            "ikepolicy",
            json!({"dh_group": "group99"}),
            "ikepolicy.dh_group",
            400,
        ),
        (
            "ikepolicy",
            json!({"lifetime_seconds": 5}),
            "ikepolicy.lifetime_seconds",
            400,
        ),
        ("cgw_id", json!("x"), "vpn_connection.cgw_id", 400),
    ];
    for (field, value, needle, status) in cases {
        let mut b = base();
        b[field] = value.clone();
        let r = app
            .post("/vpn-connection", json!({"vpn_connection": b}))
            .await;
        let msg = r.assert_error(status, "VPN.0001");
        assert!(
            msg.contains(needle),
            "{field}={value}: {msg:?} should mention {needle:?}"
        );
    }
    let mut b = base();
    b["cgw_id"] = json!(uuid());
    app.post("/vpn-connection", json!({"vpn_connection": b}))
        .await
        .assert_error(404, "VPN.0004");
    app.stop().await;
}

#[tokio::test]
async fn monitors_for_unknown_connections_and_duplicates() {
    let app = TestApp::spawn().await;
    app.post(
        "/connection-monitors",
        json!({"connection_monitor": {"vpn_connection_id": uuid()}}),
    )
    .await
    .assert_error(404, "VPN.0004");
    let (_, _, conn, _) = app.seed().await;
    let msg = app
        .post(
            "/connection-monitors",
            json!({"connection_monitor": {"vpn_connection_id": conn}}),
        )
        .await
        .assert_error(400, "VPN.0381");
    assert_eq!(
        msg,
        format!("VPN connection {conn} already has connection monitor")
    );
    app.stop().await;
}

#[tokio::test]
async fn content_type_size_path_and_method_errors() {
    let app = TestApp::spawn().await;
    let ok = br#"{"customer_gateway": {"id_value": "127.0.0.10"}}"#.to_vec();
    let msg = raw_post(&app, "/customer-gateways", Some("text/plain"), ok.clone())
        .await
        .assert_error(400, "VPN.0001");
    assert!(msg.contains("Content-Type"), "{msg}");
    let msg = raw_post(&app, "/customer-gateways", None, ok.clone())
        .await
        .assert_error(400, "VPN.0001");
    assert!(msg.contains("Content-Type"), "{msg}");
    let r = raw_post(
        &app,
        "/customer-gateways",
        Some("application/json;charset=utf-8"),
        ok,
    )
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.raw);

    let mut big = br#"{"customer_gateway": {"id_value": "127.0.0.10", "name": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 1024 * 1024 + 10));
    big.extend(br#""}}"#);
    let msg = raw_post(&app, "/customer-gateways", Some("application/json"), big)
        .await
        .assert_error(413, "APIGW.0201");
    assert!(msg.contains("too large"), "{msg}");

    app.get("/no-such-thing")
        .await
        .assert_error(404, "APIGW.0101");
    app.send(Method::GET, "/v6/whatever", None, None)
        .await
        .assert_error(404, "APIGW.0101");
    let msg = app
        .send(
            Method::PATCH,
            &app.v5("/connection-monitors"),
            Some(&app.token),
            None,
        )
        .await
        .assert_error(405, "APIGW.0101");
    assert!(msg.contains("PATCH"), "{msg}");
    app.send(
        Method::PUT,
        &app.v5(&format!("/connection-monitors/{}", uuid())),
        Some(&app.token),
        None,
    )
    .await
    .assert_error(405, "APIGW.0101");
    app.get("/connection-monitors/not-a-uuid")
        .await
        .assert_error(400, "VPN.0001");
    app.get(&format!("/connection-monitors/{}", uuid()))
        .await
        .assert_error(404, "VPN.0004");
    app.stop().await;
}
