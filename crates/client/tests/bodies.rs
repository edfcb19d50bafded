//! The CLI's request bodies are the spec's: each command's body, envelope
//! included, compared with the golden request files the server's structs
//! are tested against (`crates/domain/tests/golden/`).

use client::resources::{
    self, ConnectionCreate, GatewayCreate, Kind, cgw_body, connection_body, envelope, gateway_body,
    monitor_body,
};
use domain::gateway::VpnGateway;
use serde_json::Value;

const VGW: &str = "1a2b7f3e-9c41-4d2a-8b6e-5f0c3d2e1a90";
const EIP_A: &str = "9b1d4e6f-3a2c-4b5d-8e7f-6a5b4c3d2e1f";
const CGW: &str = "3c4d9e21-7a5b-4c8d-9e0f-1a2b3c4d5e6f";

fn golden(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../domain/tests/golden")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn monitor_create_sends_the_body_the_sdk_sends() {
    let body = envelope(
        Kind::Monitor,
        &monitor_body("cae286f2-0000-4000-8000-e22416ca1220"),
    )
    .unwrap();
    assert_eq!(body, golden("connection_monitor_create_request.json"));
}

#[test]
fn connection_create_with_an_eip_sends_the_spec_example() {
    let r = ConnectionCreate {
        gateway: "gw".into(),
        eip_id: Some(EIP_A.into()),
        customer_gateway: "cgw".into(),
        peer_subnets: vec!["10.10.0.0/16".into()],
        psk: "Abcd1234!x".into(),
        name: None,
        style: None,
    };
    let body = envelope(
        Kind::Connection,
        &connection_body(&r, VGW, CGW, None).unwrap(),
    )
    .unwrap();
    assert_eq!(body, golden("vpn_connection_create_request.json"));
}

#[test]
fn connection_create_without_an_eip_uses_the_gateways_eip1() {
    let show = golden("vpn_gateway_show_response.json");
    let g: VpnGateway = resources::typed(Kind::Gateway, &show["vpn_gateway"]).unwrap();
    let r = ConnectionCreate {
        gateway: "gw".into(),
        eip_id: None,
        customer_gateway: "cgw".into(),
        peer_subnets: vec!["10.10.0.0/16".into()],
        psk: "Abcd1234!x".into(),
        name: None,
        style: None,
    };
    let body = envelope(
        Kind::Connection,
        &connection_body(&r, VGW, CGW, Some(&g)).unwrap(),
    )
    .unwrap();
    assert_eq!(body, golden("vpn_connection_create_request.json"));
}

#[test]
fn gateway_create_with_an_eip_sends_the_spec_example_with_eip1_only() {
    let r = GatewayCreate {
        name: None,
        vpc_id: "1b5e0d5a-7e55-4d5a-9d4e-3f1f5a6b7c8d".into(),
        subnet_id: "2c6f1e6b-8f66-4e6b-8e5f-4a2a6b7c8d9e".into(),
        local_subnets: vec!["192.168.0.0/24".into()],
        eip_id: Some(EIP_A.into()),
        eip_bandwidth: 10,
    };
    // The CLI binds one EIP (`--eip-id`); the example binds two.
    let mut want = golden("vpn_gateway_create_request.json");
    want["vpn_gateway"]
        .as_object_mut()
        .and_then(|m| m.remove("eip2"))
        .expect("the example has eip2");
    assert_eq!(envelope(Kind::Gateway, &gateway_body(&r)).unwrap(), want);
}

#[test]
fn customer_gateway_create_sends_the_spec_example_with_its_id_type() {
    let body = envelope(
        Kind::CustomerGateway,
        &cgw_body("198.18.101.20", None, Some(65000)),
    )
    .unwrap();
    // The CLI names the default id_type (ip) explicitly.
    let mut want = golden("customer_gateway_create_request.json");
    want["customer_gateway"]["id_type"] = "ip".into();
    assert_eq!(body, want);
}
